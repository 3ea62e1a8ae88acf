//! Randomised Pod churn (seeded, plain Rust): after every step the plan, once applied, leaves
//! nothing to do; every desired endpoint is in exactly one slice; no slice exceeds the maximum.

mod support;

use std::collections::BTreeMap;

use support::*;
use svcnet_controller::endpointslice::PodView;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

fn random_pod(rng: &mut Rng, id: usize) -> PodView {
    let mut p = pod(&format!("web-{id}"))
        .ip(&format!("10.244.{}.{}", id / 200, id % 200 + 1))
        .on(&format!("node-{}", rng.below(3) + 1));
    if rng.chance(50) {
        p = p.ip(&format!("fd00:10:244::{id:x}"));
    }
    // Two container images: the named port resolves to 8080 or 9090; some pods lack it.
    match rng.below(10) {
        0 => {}
        1..=3 => p = p.container_port("http", 9090),
        _ => p = p.container_port("http", 8080),
    }
    p.ready = rng.chance(80);
    p
}

/// What every slice set must hold: (family, pod name) -> number of endpoints found.
fn check_layout(store: &SliceStore, pods: &[PodView], max: usize, step: usize) {
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for slice in &store.slices {
        assert!(
            endpoints(slice).len() <= max,
            "step {step}: slice over {max}"
        );
        for ep in endpoints(slice) {
            let name = ep
                .target_ref
                .as_ref()
                .and_then(|t| t.name.clone())
                .unwrap_or_default();
            *seen.entry((slice.address_type.clone(), name)).or_default() += 1;
        }
    }
    let mut want: BTreeMap<(String, String), usize> = BTreeMap::new();
    for p in pods.iter().filter(|p| !p.phase_finished) {
        for ip in &p.ips {
            let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
            want.insert((family.to_owned(), p.name.clone()), 1);
        }
    }
    assert_eq!(
        seen, want,
        "step {step}: every desired endpoint exactly once"
    );
    for family in ["IPv4", "IPv6"] {
        assert!(
            !store.slices_of(family).is_empty(),
            "step {step}: {family} has at least a placeholder"
        );
    }
}

#[test]
fn random_pod_churn_always_converges_in_one_plan() {
    for seed in [1u64, 7, 42, 2026] {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let max = [1, 3, 10, 100][rng.below(4)];
        let svc = service("web")
            .named_port("http", 80, "http")
            .port(443, 8443)
            .dual_stack();
        let options = opts(max);
        let mut store = SliceStore::default();
        let mut pods: Vec<PodView> = Vec::new();
        let mut next_id = 0;
        for step in 0..150 {
            for _ in 0..=rng.below(5) {
                match rng.below(6) {
                    0 | 1 => {
                        pods.push(random_pod(&mut rng, next_id));
                        next_id += 1;
                    }
                    2 if !pods.is_empty() => {
                        let i = rng.below(pods.len());
                        pods.remove(i);
                    }
                    3 if !pods.is_empty() => {
                        let i = rng.below(pods.len());
                        pods[i].ready = !pods[i].ready;
                    }
                    4 if !pods.is_empty() => {
                        let i = rng.below(pods.len());
                        pods[i].terminating = true;
                    }
                    5 if !pods.is_empty() => {
                        let i = rng.below(pods.len());
                        pods[i].node_name = Some(format!("node-{}", rng.below(3) + 1));
                    }
                    _ => {}
                }
            }
            let plan = store.converge(&svc, &pods, &nodes(), &options);
            // The plan applied was self-consistent: updates and deletes named existing slices
            // (checked by SliceStore::apply), and nothing was both created and deleted.
            assert!(
                plan.create.is_empty() || plan.delete.is_empty(),
                "seed {seed} step {step}: create + delete not merged"
            );
            check_layout(&store, &pods, max, step);
        }
    }
}
