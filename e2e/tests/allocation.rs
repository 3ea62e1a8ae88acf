//! ClusterIPs and NodePorts handed out by svcnet's webhook, called by the real apiserver: values from
//! svcnet's book, user choices honoured or denied with a reason, dry runs that reserve nothing, two
//! replicas under a burst from 20 clients, a replica killed mid-burst, repair of leaks and of
//! Services created while the webhook was down, a full NodePort range.
//! These tests stop and start the shared controller and change svcnet's configuration, so they live
//! in their own test binary and run one at a time.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use svcnet_controller::allocation::book::Book;
use svcnet_controller::allocation::plan::{Held, held_by};
use svcnet_crds::{AllocationState, SvcnetConfig};
use svcnet_e2e::Result;
use svcnet_e2e::kit::addons::{self, MAIN_CONTROLLER, http_get};
use svcnet_e2e::kit::client::connect;
use svcnet_e2e::kit::namespace::with_namespace;
use svcnet_e2e::wait::{poll_for, poll_until};
use tokio::sync::Mutex;

const TIMEOUT: Duration = Duration::from_secs(120);
/// The second replica of the HA tests.
const SECOND: (&str, u16) = ("svcnet-controller-b", 18081);

/// One test at a time: they restart the controller and change the cluster-wide configuration.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// The main replica, restarted with a short repair interval (leaks go within seconds).
fn restart_main_with_fast_repair() -> Result<()> {
    addons::stop(MAIN_CONTROLLER.0)?;
    addons::start_controller_with(
        MAIN_CONTROLLER.0,
        MAIN_CONTROLLER.1,
        &["--repair-interval=2s".to_owned()],
    )
}

/// The main controller ready, however svcnet is installed.
async fn wait_main_ready(client: &kube::Client) -> Result<()> {
    svcnet_e2e::kit::install::wait_controller_ready(client, TIMEOUT).await
}

async fn wait_ready(port: u16) -> Result<()> {
    svcnet_e2e::kit::install::wait_addon_ready(port, TIMEOUT).await
}

async fn book(client: &kube::Client) -> Result<Book> {
    let api: Api<AllocationState> = Api::all(client.clone());
    let state = api.get("default").await?;
    Book::from_spec(&state.spec).map_err(|e| svcnet_e2e::Error::invalid("allocation state", e))
}

fn spec_of(svc: &Service) -> Vec<Held> {
    svc.spec.as_ref().map(held_by).unwrap_or_default()
}

fn svc(name: &str, spec: Value) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap_or_default()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

fn ips(svc: &Service) -> Vec<IpAddr> {
    svc.spec
        .iter()
        .flat_map(|s| s.cluster_ips.iter().flatten())
        .filter_map(|ip| ip.parse().ok())
        .collect()
}

fn node_ports(svc: &Service) -> Vec<i32> {
    svc.spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .filter_map(|p| p.node_port)
        .collect()
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn services_get_their_addresses_and_node_ports_from_svcnet() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let client = connect().await?;
    wait_main_ready(&client).await?;
    let c = client.clone();
    with_namespace(&client, "alloc", |ns| async move {
        let api: Api<Service> = ns.api();
        let pp = PostParams::default();

        // Plain ClusterIP, and every value of a NodePort / LoadBalancer-Local Service, in the book.
        let plain = api.create(&pp, &svc("plain", json!({"ports": [{"port": 80}]}))).await?;
        let dual = api
            .create(&pp, &svc("dual", json!({"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]})))
            .await?;
        let lb = api
            .create(&pp, &svc("lb", json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 443}]})))
            .await?;
        let fams: Vec<bool> = ips(&dual).iter().map(IpAddr::is_ipv4).collect();
        assert_eq!(fams, vec![true, false], "one address per family: {:?}", ips(&dual));
        assert_eq!(node_ports(&lb).len(), 2);
        assert!(lb.spec.as_ref().and_then(|s| s.health_check_node_port).is_some());
        let state = book(&c).await?;
        for value in [&plain, &dual, &lb].into_iter().flat_map(spec_of) {
            assert!(state.has(value), "{value:?} is in svcnet's book");
        }

        // User choices are honoured; taken ones are denied with the reason.
        let chosen = api
            .create(&pp, &svc("chosen", json!({"type": "NodePort", "clusterIP": "10.96.0.200", "ports": [{"port": 80, "nodePort": 30055}]})))
            .await?;
        assert_eq!(ips(&chosen), vec![ip("10.96.0.200")]);
        assert_eq!(node_ports(&chosen), vec![30055]);
        let taken_ip = api
            .create(&pp, &svc("taken-ip", json!({"clusterIP": "10.96.0.200", "ports": [{"port": 80}]})))
            .await
            .expect_err("a taken ClusterIP is denied")
            .to_string();
        assert!(taken_ip.contains("provided IP 10.96.0.200 is already allocated"), "{taken_ip}");
        let taken_port = api
            .create(&pp, &svc("taken-port", json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30055}]})))
            .await
            .expect_err("a taken NodePort is denied")
            .to_string();
        assert!(taken_port.contains("spec.ports[0].nodePort: provided port 30055 is already allocated"), "{taken_port}");

        // A dry run gets an answer and reserves nothing.
        let dry = api
            .create(&PostParams { dry_run: true, ..PostParams::default() }, &svc("dry", json!({"type": "NodePort", "ports": [{"port": 80}]})))
            .await?;
        assert_eq!(ips(&dry).len(), 1);
        let after = book(&c).await?;
        assert!(!after.has(Held::Ip(ips(&dry)[0])), "a dry run reserves nothing");
        assert!(after.pending().keys().all(|k| !k.ends_with("/dry")));

        // An update adding a port gets one more NodePort and keeps the others.
        let patched = api
            .patch("lb", &PatchParams::default(), &Patch::Merge(json!({"spec": {"ports": [{"name": "a", "port": 80, "nodePort": node_ports(&lb)[0]}, {"name": "b", "port": 443, "nodePort": node_ports(&lb)[1]}, {"name": "c", "port": 8443}]}})))
            .await?;
        let now = node_ports(&patched);
        assert_eq!(now.len(), 3);
        assert_eq!(&now[..2], &node_ports(&lb)[..]);
        assert_eq!(now.iter().collect::<BTreeSet<_>>().len(), 3);

        // A deleted Service's address can be taken again.
        api.delete("chosen", &DeleteParams::default()).await?;
        let cc = c.clone();
        poll_until("10.96.0.200 released", TIMEOUT, || {
            let c = cc.clone();
            async move { book(&c).await.is_ok_and(|b| !b.has(Held::Ip(ip("10.96.0.200")))) }
        })
        .await?;
        let again = api
            .create(&pp, &svc("again", json!({"clusterIP": "10.96.0.200", "ports": [{"port": 80}]})))
            .await?;
        assert_eq!(ips(&again), vec![ip("10.96.0.200")]);
        Ok(())
    })
    .await
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn a_burst_from_20_clients_against_two_replicas_gets_distinct_values_and_survives_a_kill()
-> Result<()> {
    let _serial = SERIAL.lock().await;
    let client = connect().await?;
    restart_main_with_fast_repair()?;
    addons::start_controller_with(SECOND.0, SECOND.1, &["--repair-interval=2s".to_owned()])?;
    wait_ready(MAIN_CONTROLLER.1).await?;
    wait_ready(SECOND.1).await?;
    let c = client.clone();
    let outcome = with_namespace(&client, "burst", |ns| async move {
        let api: Api<Service> = ns.api();
        // `retry_taken`: while a replica dies, the apiserver allocates by itself for the requests
        // it could not deliver (failurePolicy Ignore); until svcnet sees those Services, it may hand
        // out one of their values, which the apiserver refuses ("provided port is already
        // allocated"). A client retries, as a controller would.
        let create_all = |prefix: &'static str, count: usize, retry_taken: bool| {
            let api = api.clone();
            async move {
                let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let mut clients = Vec::new();
                for _ in 0..20 {
                    let api = api.clone();
                    let next = next.clone();
                    clients.push(tokio::spawn(async move {
                        let mut made = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if i >= count {
                                return Ok::<_, kube::Error>(made);
                            }
                            let body = svc(&format!("{prefix}-{i}"), json!({"type": "NodePort", "ports": [{"port": 80}]}));
                            // Until svcnet has seen the Services the apiserver allocated for
                            // itself (a leader may have to take over first: up to the Lease's 15 s),
                            // a retry may be refused again; it waits on success, as a controller
                            // retrying with backoff would.
                            let created = poll_for("a create the apiserver accepts", TIMEOUT, || {
                                let api = api.clone();
                                let body = body.clone();
                                async move {
                                    match api.create(&PostParams::default(), &body).await {
                                        Ok(s) => Some(Ok(s)),
                                        Err(kube::Error::Api(e))
                                            if retry_taken && e.message.contains("already allocated") =>
                                        {
                                            None
                                        }
                                        Err(e) => Some(Err(e)),
                                    }
                                }
                            })
                            .await
                            .map_err(|e| kube::Error::Service(e.to_string().into()))?;
                            made.push(created?);
                        }
                    }));
                }
                let mut all = Vec::new();
                for c in clients {
                    all.extend(c.await.map_err(|e| svcnet_e2e::Error::invalid("client task", e))??);
                }
                Ok::<_, svcnet_e2e::Error>(all)
            }
        };

        let created = create_all("s", 1000, false).await?;
        assert_eq!(created.len(), 1000, "every create succeeded");
        let addresses: BTreeSet<IpAddr> = created.iter().flat_map(ips).collect();
        let ports: BTreeSet<i32> = created.iter().flat_map(node_ports).collect();
        assert_eq!(addresses.len(), 1000, "distinct ClusterIPs");
        assert_eq!(ports.len(), 1000, "distinct NodePorts");
        let state = book(&c).await?;
        assert!(created.iter().flat_map(spec_of).all(|v| state.has(v)), "all handed out by svcnet");
        for port in [MAIN_CONTROLLER.1, SECOND.1] {
            let metrics = http_get(port, "/metrics")?;
            assert!(
                metrics.contains("svcnet_allocation_webhook_requests_total{outcome=\"allocated\"}"),
                "replica on :{port} served part of the burst"
            );
        }

        // Kill a replica in the middle of a second burst.
        let burst = tokio::spawn(create_all("k", 300, true));
        let cc = c.clone();
        poll_until("the second burst under way", TIMEOUT, || {
            let c = cc.clone();
            async move { book(&c).await.is_ok_and(|b| b.usage().iter().any(|(r, used, _)| r == "30000-32767" && *used >= 1100)) }
        })
        .await?;
        addons::stop(SECOND.0)?;
        let second = burst.await.map_err(|e| svcnet_e2e::Error::invalid("burst", e))??;
        assert_eq!(second.len(), 300);
        addons::start_controller_with(SECOND.0, SECOND.1, &["--repair-interval=2s".to_owned()])?;

        // A leak: the webhook answers, then validation fails (a port name that is not a DNS label).
        let leaky = svc("leaky", json!({"type": "NodePort", "clusterIP": "10.96.0.201", "ports": [{"name": "Not_Valid", "port": 80}]}));
        assert!(api.create(&PostParams::default(), &leaky).await.is_err());

        // Repair converges: every value held by a Service is in the book, nothing else is, and no
        // value is held twice.
        let listed = api.list(&Default::default()).await?.items;
        let held: Vec<Held> = listed.iter().flat_map(spec_of).collect();
        let distinct: BTreeSet<Held> = held.iter().copied().collect();
        assert_eq!(distinct.len(), held.len(), "no value is held twice");
        let cc = c.clone();
        poll_until("repair to release the leak and adopt what it must", TIMEOUT, || {
            let c = cc.clone();
            let distinct = distinct.clone();
            async move {
                let Ok(b) = book(&c).await else { return false };
                let all_held = distinct.iter().all(|v| !b.in_range(*v) || b.has(*v));
                all_held && !b.has(Held::Ip(ip("10.96.0.201"))) && b.pending().keys().all(|k| !k.starts_with("burst"))
            }
        })
        .await?;
        Ok(())
    })
    .await;
    addons::stop(SECOND.0)?;
    addons::stop(MAIN_CONTROLLER.0)?;
    addons::start_controller(MAIN_CONTROLLER.0, MAIN_CONTROLLER.1)?;
    outcome
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn with_the_webhook_down_services_are_still_created_and_repair_adopts_them() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let client = connect().await?;
    let c = client.clone();
    let outcome = with_namespace(&client, "down", |ns| async move {
        let api: Api<Service> = ns.api();
        wait_ready(MAIN_CONTROLLER.1).await?;
        addons::stop(MAIN_CONTROLLER.0)?;
        // failurePolicy Ignore: the apiserver allocates by itself.
        let made = api
            .create(
                &PostParams::default(),
                &svc(
                    "while-down",
                    json!({"type": "NodePort", "ports": [{"port": 80}]}),
                ),
            )
            .await?;
        let values = spec_of(&made);
        assert_eq!(values.len(), 2);
        restart_main_with_fast_repair()?;
        let cc = c.clone();
        poll_until("the book to adopt the apiserver's choices", TIMEOUT, || {
            let c = cc.clone();
            let values = values.clone();
            async move {
                book(&c)
                    .await
                    .is_ok_and(|b| values.iter().all(|v| b.has(*v)))
            }
        })
        .await?;
        Ok(())
    })
    .await;
    addons::stop(MAIN_CONTROLLER.0)?;
    addons::start_controller(MAIN_CONTROLLER.0, MAIN_CONTROLLER.1)?;
    outcome
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn a_full_node_port_range_gives_a_clear_error_and_status_reports_usage() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let client = connect().await?;
    svcnet_e2e::kit::crds::install(&client).await?;
    wait_main_ready(&client).await?;
    let configs: Api<SvcnetConfig> = Api::all(client.clone());
    let config = json!({
        "apiVersion": "svcnet.dev/v1alpha1", "kind": "SvcnetConfig",
        "metadata": { "name": "default" },
        "spec": { "nodePortRange": { "first": 32000, "last": 32015 } },
    });
    configs
        .patch(
            "default",
            &PatchParams::apply("svcnet-e2e").force(),
            &Patch::Apply(config),
        )
        .await?;
    let c = client.clone();
    let outcome = with_namespace(&client, "full", |ns| async move {
        let configs: Api<SvcnetConfig> = Api::all(c.clone());
        poll_until("the status to show the new range", TIMEOUT, || {
            let configs = configs.clone();
            async move {
                configs
                    .get("default")
                    .await
                    .ok()
                    .and_then(|c| c.status)
                    .is_some_and(|s| {
                        s.ranges.iter().any(|r| r.range == "32000-32015")
                            && s.conditions
                                .iter()
                                .any(|c| c.type_ == "Ready" && c.status == "True")
                    })
            }
        })
        .await?;
        let api: Api<Service> = ns.api();
        let mut denied = None;
        for i in 0..=16 {
            let body = svc(
                &format!("np-{i}"),
                json!({"type": "NodePort", "ports": [{"port": 80}]}),
            );
            if let Err(e) = api.create(&PostParams::default(), &body).await {
                denied = Some((i, e.to_string()));
                break;
            }
        }
        let (at, message) = denied.ok_or_else(|| {
            svcnet_e2e::Error::invalid("range", "17 NodePort Services fit in 16 ports")
        })?;
        assert!(at <= 16, "{at}");
        assert!(message.contains("no NodePort is free"), "{message}");
        let status = poll_for("usage in the status", TIMEOUT, || {
            let configs = configs.clone();
            async move {
                let s = configs.get("default").await.ok()?.status?;
                s.ranges
                    .iter()
                    .find(|r| r.range == "32000-32015" && r.free == 0)
                    .cloned()
            }
        })
        .await?;
        assert_eq!(status.allocated, 16);
        Ok(())
    })
    .await;
    configs.delete("default", &DeleteParams::default()).await?;
    // Back to the flags' range before the next test.
    poll_until("the default NodePort range back", TIMEOUT, || {
        let c = client.clone();
        async move {
            book(&c)
                .await
                .is_ok_and(|b| b.ranges().ports.to_string() == "30000-32767")
        }
    })
    .await?;
    outcome
}
