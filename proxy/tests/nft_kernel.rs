//! The compiled transactions against the real `nft` and kernel, each in a fresh network
//! namespace of its own (deleted again by a drop guard, also when a test fails). Needs `nft`
//! and `ip` and the right to create network namespaces (root); skips with a message otherwise.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use support::*;
use svcnet_proxy::netlink::{Batch, element_batch};
use svcnet_proxy::{EndpointState, ServiceState, State, compile};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A network namespace this test created; deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    /// `None` (with a message) when nft or namespaces are not available here.
    fn create() -> Option<Netns> {
        let nft_ok = Command::new("nft")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !nft_ok {
            eprintln!("skipping: nft is not installed");
            return None;
        }
        let name = format!(
            "svcnet-proxytest-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let created = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .is_ok_and(|o| o.status.success());
        if !created {
            eprintln!("skipping: cannot create network namespace {name} (needs root and iproute2)");
            return None;
        }
        Some(Netns { name })
    }

    /// Run `nft -f -` with `text` inside the namespace.
    fn apply(&self, text: &str) -> Result<(), String> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Send an element batch over netlink from inside the namespace (a thread that joins it).
    fn send(&self, batch: &Batch) -> Result<(), String> {
        let path = format!("/run/netns/{}", self.name);
        let batch = batch.clone();
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).map_err(|e| e.to_string())?;
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| e.to_string())?;
            svcnet_proxy::runner::netlink_socket::send(&batch).map_err(|e| e.to_string())
        })
        .join()
        .map_err(|_| "the netlink thread panicked".to_owned())?
    }

    /// `nft list table`, normalised to a sorted list of lines (one element a line), so two
    /// namespaces that reached the same state in different orders compare equal.
    fn listing(&self, family: &str) -> Vec<String> {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.name, "nft", "list", "table", family, "svcnet",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // nft 1.0.6 prints an endpoint map lookup's `th dport` as `tcp dport` or not depending
        // on what it read before: the same bytes either way.
        let text = String::from_utf8_lossy(&out.stdout)
            .replace("meta l4proto . tcp dport . ", "meta l4proto . th dport . ")
            .replace("meta l4proto . udp dport . ", "meta l4proto . th dport . ")
            .replace("meta l4proto . sctp dport . ", "meta l4proto . th dport . ")
            .replace("elements = {", "\n")
            .replace(['{', '}'], "\n");
        let mut lines: Vec<String> = text
            .split(['\n', ','])
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        lines.sort();
        lines
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .output();
    }
}

fn apply_or_panic(ns: &Netns, text: &str) {
    if let Err(e) = ns.apply(text) {
        panic!("nft refused the transaction: {e}\n{text}");
    }
}

#[test]
fn golden_rulesets_apply_to_the_real_kernel_and_reapply_over_themselves() {
    let Some(ns) = Netns::create() else { return };
    for (name, state) in golden_states() {
        let text = compile(&state, None).0.to_string();
        apply_or_panic(&ns, &text);
        // A restart does a full sync over the existing table.
        ns.apply(&text)
            .unwrap_or_else(|e| panic!("{name}, second time: {e}"));
    }
}

#[test]
fn partial_syncs_apply_to_the_real_kernel_and_end_like_a_full_sync() {
    let (Some(incremental), Some(fresh)) = (Netns::create(), Netns::create()) else {
        return;
    };
    let mut rng = Rng(0xdec0_de5e_ed00_0001);
    let mut state = state();
    let (tx, mut committed) = compile(&state, None);
    apply_or_panic(&incremental, &tx.to_string());
    for step in 0..40 {
        state = random_change(&mut rng, state);
        let (tx, next) = compile(&state, Some(&committed));
        // Element changes alone go over netlink, as the runner sends them.
        match element_batch(&tx, 1) {
            Some(batch) => incremental.send(&batch),
            None => incremental.apply(&tx.to_string()),
        }
        .unwrap_or_else(|e| panic!("step {step}: {e}\n{tx}"));
        committed = next;
        if step % 10 == 9 {
            apply_or_panic(&fresh, &compile(&state, None).0.to_string());
            assert_eq!(
                incremental.listing("ip"),
                fresh.listing("ip"),
                "step {step}"
            );
        }
    }
}

/// `addr` moved by 100 in its last byte: another endpoint of the same family.
fn moved(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mut o = a.octets();
            o[3] = o[3].wrapping_add(100);
            IpAddr::from(o)
        }
        IpAddr::V6(a) => {
            let mut o = a.octets();
            o[15] = o[15].wrapping_add(100);
            IpAddr::from(o)
        }
    }
}

#[test]
fn element_changes_sent_over_netlink_end_like_nft() {
    let (Some(netlink), Some(nft)) = (Netns::create(), Netns::create()) else {
        return;
    };
    let mut sent = 0;
    for (name, state) in golden_states() {
        let family = state.family.nft();
        let (full, committed) = compile(&state, None);
        apply_or_panic(&netlink, &full.to_string());
        apply_or_panic(&nft, &full.to_string());
        // Every Service's first endpoint replaced: elements only where the count stays.
        let mut next = state.clone();
        for eps in next.endpoints.values_mut() {
            if let Some(first) = eps.first_mut() {
                first.ip = moved(first.ip);
            }
        }
        let (tx, _) = compile(&next, Some(&committed));
        let Some(batch) = element_batch(&tx, 1) else {
            continue;
        };
        netlink
            .send(&batch)
            .unwrap_or_else(|e| panic!("{name}: {e}\n{tx}"));
        apply_or_panic(&nft, &tx.to_string());
        assert_eq!(netlink.listing(family), nft.listing(family), "{name}");
        sent += 1;
    }
    assert!(
        sent >= 3,
        "only {sent} golden states changed by elements alone"
    );
}

#[test]
fn a_udp_services_dnat_rule_reads_the_udp_map_and_checks_for_no_tcp() {
    let Some(ns) = Netns::create() else { return };
    let (_, v6) = golden_states()
        .into_iter()
        .find(|(name, _)| *name == "ipv6-load-balancing-modes")
        .unwrap();
    apply_or_panic(&ns, &compile(&v6, None).0.to_string());
    // A map whose value says `tcp dport` makes nft add `meta l4proto tcp` to the rule: a UDP
    // Service's rule reads the UDP map and checks for no TCP.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "nft",
            "--debug=netlink",
            "list",
            "chain",
        ])
        .args(["ip6", "svcnet", "spread-udp-random-2"])
        .output()
        .unwrap();
    let bytecode = String::from_utf8_lossy(&out.stdout);
    assert!(
        bytecode.contains("lookup reg 1 set service-endpoints-udp"),
        "{bytecode}"
    );
    assert!(!bytecode.contains("cmp eq reg 1 0x00000006"), "{bytecode}");
}

#[test]
fn removing_endpoints_and_services_deletes_their_chains_in_one_transaction() {
    let Some(ns) = Netns::create() else { return };
    let sticky = ServiceState {
        client_ip_affinity_timeout: Some(60),
        ..ServiceState::cluster_ip(ip("10.96.0.40"), 80)
    };
    let state = with(state(), "sticky", sticky, vec![local_ep(7), remote_ep(9)]);
    let (tx, committed) = compile(&state, None);
    apply_or_panic(&ns, &tx.to_string());

    let one_left = with(
        state.clone(),
        "sticky",
        state.services[&key("sticky")].clone(),
        vec![remote_ep(9)],
    );
    let (tx, committed) = compile(&one_left, Some(&committed));
    assert!(
        tx.to_string().contains("delete chain") && tx.to_string().contains("delete set"),
        "{tx}"
    );
    apply_or_panic(&ns, &tx.to_string());

    let gone = State {
        services: Default::default(),
        endpoints: Default::default(),
        ..one_left
    };
    let (tx, _) = compile(&gone, Some(&committed));
    apply_or_panic(&ns, &tx.to_string());
    let listing = ns.listing("ip").join("\n");
    assert!(!listing.contains("sticky"), "{listing}");
}

#[test]
fn ipv6_partial_sync_applies_to_the_real_kernel() {
    let Some(ns) = Netns::create() else { return };
    let (_, v6) = golden_states()
        .into_iter()
        .find(|(n, _)| n.starts_with("ipv6"))
        .unwrap();
    let (tx, committed) = compile(&v6, None);
    apply_or_panic(&ns, &tx.to_string());
    let mut next = v6.clone();
    for eps in next.endpoints.values_mut() {
        eps.pop();
        eps[0] = EndpointState::ready(ip("fd00:10:244:1::6"), 5353, THIS_NODE);
    }
    let (tx, _) = compile(&next, Some(&committed));
    assert!(!tx.is_empty());
    apply_or_panic(&ns, &tx.to_string());
}

#[test]
fn cleanup_removes_svcnet_tables_and_nothing_else() {
    let Some(ns) = Netns::create() else { return };
    let (transaction, _) = compile(&golden_states()[0].1, None);
    apply_or_panic(&ns, &transaction.to_string());
    apply_or_panic(
        &ns,
        "add table ip6 svcnet\nadd table inet bystander\nadd chain inet bystander keep\n",
    );
    let cleanup = |ns: &Netns| {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                env!("CARGO_BIN_EXE_svcnet-proxy"),
                "--cleanup",
            ])
            .output()
            .unwrap()
    };
    let out = cleanup(&ns);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tables = Command::new("ip")
        .args(["netns", "exec", &ns.name, "nft", "list", "tables"])
        .output()
        .unwrap();
    let tables = String::from_utf8_lossy(&tables.stdout);
    assert_eq!(tables.trim(), "table inet bystander", "left: {tables}");
    // A second cleanup, with nothing of ours left, is fine too.
    assert!(cleanup(&ns).status.success());
}
