//! Minimal churn: what a change in Pods or in the Service makes the planner write.

mod support;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use support::*;
use svcnet_controller::endpointslice::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME, Options, PodView};

fn web() -> k8s_openapi::api::core::v1::Service {
    service("web").port(80, 8080)
}

fn slice_holding<'a>(store: &'a SliceStore, pod: &str) -> &'a EndpointSlice {
    find_endpoint(&store.slices, pod)
        .expect("pod has an endpoint")
        .0
}

fn name(slice: &EndpointSlice) -> &str {
    slice.metadata.name.as_deref().unwrap_or_default()
}

#[test]
fn unchanged_input_gives_an_empty_plan() {
    let mut store = SliceStore::default();
    let first = store.converge(&web(), &numbered_pods("web", 250), &nodes(), &opts(100));
    assert_eq!((first.create.len(), first.endpoints_added), (3, 250));
    let again = store.plan(&web(), &numbered_pods("web", 250), &nodes(), &opts(100));
    assert!(again.is_empty());
    assert_eq!((again.endpoints_added, again.endpoints_removed), (0, 0));
}

#[test]
fn one_pod_flipping_ready_updates_exactly_one_slice() {
    let mut store = SliceStore::default();
    let mut pods = numbered_pods("web", 250);
    store.converge(&web(), &pods, &nodes(), &opts(100));
    let holder = name(slice_holding(&store, "web-42")).to_owned();

    pods[42].ready = false;
    let plan = store.plan(&web(), &pods, &nodes(), &opts(100));
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(plan.update.len(), 1);
    assert_eq!(name(&plan.update[0]), holder);
    let (_, ep) = find_endpoint(&plan.update, "web-42").expect("still in its slice");
    assert_eq!(conditions(ep), (Some(false), Some(false), Some(false)));
    assert_eq!((plan.endpoints_added, plan.endpoints_removed), (0, 0));
}

#[test]
fn added_pod_goes_into_the_fullest_slice_that_has_room() {
    // Three partially full slices of 6, 9 and 10 (max 10): build them by removing pods.
    let mut store = SliceStore::default();
    let mut pods = numbered_pods("web", 30);
    store.converge(&web(), &pods, &nodes(), &opts(10));
    let mut holders: Vec<String> = store.slices.iter().map(|s| name(s).to_owned()).collect();
    holders.sort();
    let in_slice = |store: &SliceStore, slice: &str| -> Vec<String> {
        store
            .slices
            .iter()
            .filter(|s| name(s) == slice)
            .flat_map(endpoints)
            .filter_map(|e| e.target_ref.as_ref()?.name.clone())
            .collect()
    };
    let mut gone: Vec<String> = in_slice(&store, &holders[0]).into_iter().take(4).collect();
    gone.extend(in_slice(&store, &holders[1]).into_iter().take(1));
    pods.retain(|p| !gone.contains(&p.name));
    store.converge(&web(), &pods, &nodes(), &opts(10));
    assert_eq!(sizes(&store.slices), [6, 9, 10]);

    pods.push(numbered_pod("web", 99));
    let plan = store.plan(&web(), &pods, &nodes(), &opts(10));
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(plan.update.len(), 1);
    assert_eq!(
        name(&plan.update[0]),
        holders[1],
        "the slice with 9 takes it"
    );
    assert_eq!(endpoints(&plan.update[0]).len(), 10);
    assert_eq!(plan.endpoints_added, 1);
}

#[test]
fn removed_pod_updates_only_its_slice() {
    let mut store = SliceStore::default();
    let mut pods = numbered_pods("web", 250);
    store.converge(&web(), &pods, &nodes(), &opts(100));
    let holder = name(slice_holding(&store, "web-7")).to_owned();

    pods.retain(|p| p.name != "web-7");
    let plan = store.plan(&web(), &pods, &nodes(), &opts(100));
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(plan.update.len(), 1);
    assert_eq!(name(&plan.update[0]), holder);
    assert!(find_endpoint(&plan.update, "web-7").is_none());
    assert_eq!(plan.endpoints_removed, 1);
}

#[test]
fn slice_whose_last_endpoint_goes_is_deleted() {
    let mut store = SliceStore::default();
    let mut pods = numbered_pods("web", 3);
    store.converge(&web(), &pods, &nodes(), &opts(1));
    let holder = name(slice_holding(&store, "web-1")).to_owned();

    pods.retain(|p| p.name != "web-1");
    let plan = store.plan(&web(), &pods, &nodes(), &opts(1));
    assert!(plan.create.is_empty() && plan.update.is_empty());
    let deleted: Vec<&str> = plan.delete.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(deleted, [holder.as_str()]);
}

#[test]
fn slice_whose_last_endpoint_goes_is_reused_for_a_new_endpoint() {
    let mut store = SliceStore::default();
    let mut pods = numbered_pods("web", 3);
    store.converge(&web(), &pods, &nodes(), &opts(1));
    let holder = name(slice_holding(&store, "web-1")).to_owned();

    // web-1 replaced by web-9: the emptied slice is updated instead of delete + create.
    pods.retain(|p| p.name != "web-1");
    pods.push(numbered_pod("web", 9));
    let plan = store.converge(&web(), &pods, &nodes(), &opts(1));
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(plan.update.len(), 1);
    assert_eq!(name(&plan.update[0]), holder);
    assert!(find_endpoint(&plan.update, "web-9").is_some());
}

#[test]
fn adding_a_pod_turns_the_placeholder_into_the_real_slice() {
    let mut store = SliceStore::default();
    store.converge(&web(), &[], &nodes(), &Options::default());
    assert_eq!(store.slices.len(), 1);
    let placeholder = name(&store.slices[0]).to_owned();

    let plan = store.converge(
        &web(),
        &numbered_pods("web", 1),
        &nodes(),
        &Options::default(),
    );
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(plan.update.len(), 1);
    assert_eq!(name(&plan.update[0]), placeholder);
    assert_eq!(port_numbers(&plan.update[0]), [8080]);
    assert_eq!(store.slices.len(), 1);
}

#[test]
fn last_pod_going_turns_the_slice_back_into_the_placeholder() {
    let mut store = SliceStore::default();
    store.converge(
        &web(),
        &numbered_pods("web", 1),
        &nodes(),
        &Options::default(),
    );
    let plan = store.converge(&web(), &[], &nodes(), &Options::default());
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(plan.update.len(), 1);
    assert!(endpoints(&plan.update[0]).is_empty());
    assert_eq!(port_numbers(&plan.update[0]), Vec::<i32>::new());
}

#[test]
fn existing_placeholder_is_kept_while_still_needed_and_rewritten_if_it_drifted() {
    let mut store = SliceStore::default();
    store.converge(&web(), &[], &nodes(), &Options::default());
    assert!(
        store
            .plan(&web(), &[], &nodes(), &Options::default())
            .is_empty()
    );

    let relabelled = web().label("team", "shop");
    let plan = store.converge(&relabelled, &[], &nodes(), &Options::default());
    assert_eq!(
        (plan.create.len(), plan.update.len(), plan.delete.len()),
        (0, 1, 0)
    );
}

#[test]
fn service_label_change_updates_every_slice() {
    let mut store = SliceStore::default();
    store.converge(&web(), &numbered_pods("web", 250), &nodes(), &opts(100));
    let relabelled = web().label("tier", "frontend");
    let plan = store.converge(
        &relabelled,
        &numbered_pods("web", 250),
        &nodes(),
        &opts(100),
    );
    assert_eq!(plan.update.len(), 3);
    for slice in &plan.update {
        let labels = slice.metadata.labels.as_ref().expect("labels");
        assert_eq!(labels.get("tier").map(String::as_str), Some("frontend"));
    }
}

#[test]
fn owner_reference_drift_is_repaired_in_place() {
    let mut store = SliceStore::default();
    store.converge(
        &web(),
        &numbered_pods("web", 5),
        &nodes(),
        &Options::default(),
    );
    let owners = store.slices[0]
        .metadata
        .owner_references
        .as_mut()
        .expect("owners");
    owners[0].block_owner_deletion = None;
    let plan = store.converge(
        &web(),
        &numbered_pods("web", 5),
        &nodes(),
        &Options::default(),
    );
    assert_eq!(
        (plan.create.len(), plan.update.len(), plan.delete.len()),
        (0, 1, 0)
    );
}

#[test]
fn slices_of_an_older_service_with_the_same_name_are_deleted_not_reused() {
    let mut store = SliceStore::default();
    store.converge(
        &web(),
        &numbered_pods("web", 5),
        &nodes(),
        &Options::default(),
    );
    let old = name(&store.slices[0]).to_owned();
    let mut recreated = web();
    recreated.metadata.uid = Some("uid-svc-web-2".to_owned());
    let plan = store.converge(
        &recreated,
        &numbered_pods("web", 5),
        &nodes(),
        &Options::default(),
    );
    assert_eq!((plan.create.len(), plan.update.len()), (1, 0));
    assert_eq!(
        plan.delete
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        [old.as_str()]
    );
}

#[test]
fn slices_managed_by_another_controller_are_never_in_the_plan() {
    let mut store = SliceStore::default();
    store.converge(
        &web(),
        &numbered_pods("web", 3),
        &nodes(),
        &Options::default(),
    );
    let mut foreign = store.slices[0].clone();
    foreign.metadata.name = Some("web-upstream".to_owned());
    foreign.metadata.labels.as_mut().expect("labels").insert(
        LABEL_MANAGED_BY.to_owned(),
        "endpointslice-controller.k8s.io".to_owned(),
    );
    let mut other_service = store.slices[0].clone();
    other_service.metadata.name = Some("api-xyz".to_owned());
    other_service
        .metadata
        .labels
        .as_mut()
        .expect("labels")
        .insert(LABEL_SERVICE_NAME.to_owned(), "api".to_owned());
    store.slices.push(foreign);
    store.slices.push(other_service);

    let untouchable = ["web-upstream", "api-xyz"];
    let scenarios: Vec<(&str, k8s_openapi::api::core::v1::Service, Vec<PodView>)> = vec![
        ("steady", web(), numbered_pods("web", 3)),
        ("pods gone", web(), vec![]),
        ("pods changed", web(), numbered_pods("web", 300)),
        ("selector removed", web().without_selector(), vec![]),
    ];
    for (what, svc, pods) in scenarios {
        let plan = store.plan(&svc, &pods, &nodes(), &Options::default());
        let touched: Vec<&str> = plan
            .update
            .iter()
            .map(name)
            .chain(plan.delete.iter().map(|d| d.name.as_str()))
            .collect();
        for slice in untouchable {
            assert!(!touched.contains(&slice), "{what}: touched {slice}");
        }
    }
}

#[test]
fn selector_removed_or_external_name_deletes_all_our_slices() {
    for svc in [
        web().without_selector(),
        web().external_name("db.example.com"),
    ] {
        let mut store = SliceStore::default();
        store.converge(
            &web().dual_stack(),
            &numbered_pods("web", 250),
            &nodes(),
            &opts(100),
        );
        assert_eq!(store.slices.len(), 4, "3 IPv4 + the IPv6 placeholder");
        let plan = store.converge(&svc, &numbered_pods("web", 250), &nodes(), &opts(100));
        assert!(plan.create.is_empty() && plan.update.is_empty());
        assert_eq!(plan.delete.len(), 4);
        assert_eq!(plan.endpoints_removed, 250);
        assert!(store.slices.is_empty());
    }
}

#[test]
fn dropping_a_family_deletes_its_slices() {
    let mut store = SliceStore::default();
    let pods: Vec<PodView> = (0..3)
        .map(|i| numbered_pod("web", i).ip(&format!("fd00:10:244::{}", i + 1)))
        .collect();
    store.converge(&web().dual_stack(), &pods, &nodes(), &Options::default());
    let plan = store.converge(&web(), &pods, &nodes(), &Options::default());
    assert!(plan.create.is_empty() && plan.update.is_empty());
    assert_eq!(plan.delete.len(), 1);
    assert!(store.slices_of("IPv6").is_empty());
}

#[test]
fn service_being_deleted_gets_no_new_slices() {
    let plan = SliceStore::default().plan(
        &deleting(web()),
        &numbered_pods("web", 5),
        &nodes(),
        &Options::default(),
    );
    assert!(plan.is_empty());
}

#[test]
fn port_change_rewrites_slices_in_place() {
    let mut store = SliceStore::default();
    store.converge(&web(), &numbered_pods("web", 150), &nodes(), &opts(100));
    let before: Vec<String> = store.slices.iter().map(|s| name(s).to_owned()).collect();
    let moved = service("web").port(80, 9090);
    let plan = store.converge(&moved, &numbered_pods("web", 150), &nodes(), &opts(100));
    assert!(
        plan.create.is_empty() && plan.delete.is_empty(),
        "delete + create become updates"
    );
    let mut after: Vec<String> = store.slices.iter().map(|s| name(s).to_owned()).collect();
    after.sort();
    let mut before = before;
    before.sort();
    assert_eq!(before, after);
    assert!(store.slices.iter().all(|s| port_numbers(s) == [9090]));
}

#[test]
fn a_plan_takes_away_when_an_endpoint_goes_or_gets_worse_not_when_one_comes_or_gets_ready() {
    let mut store = SliceStore::default();
    let mut pods = numbered_pods("web", 5);
    pods[1].ready = false;
    store.converge(&web(), &pods, &nodes(), &opts(100));
    let takes_away = |store: &SliceStore, pods: &[PodView]| {
        let plan = store.plan(&web(), pods, &nodes(), &opts(100));
        assert!(!plan.is_empty());
        plan.takes_away()
    };

    let mut gains = pods.clone();
    gains.push(numbered_pod("web", 7));
    assert!(!takes_away(&store, &gains), "a new ready endpoint");
    gains[1].ready = true;
    assert!(!takes_away(&store, &gains), "and one turning ready");

    let mut losses = pods.clone();
    losses[2].ready = false;
    assert!(takes_away(&store, &losses), "an endpoint no longer ready");
    let mut losses = pods.clone();
    losses[3].terminating = true;
    assert!(takes_away(&store, &losses), "an endpoint terminating");
    let mut losses = pods.clone();
    losses.remove(4);
    losses.push(numbered_pod("web", 7));
    assert!(
        takes_away(&store, &losses),
        "an endpoint gone, even with one added"
    );
}
