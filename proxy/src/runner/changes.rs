//! Which Services the watches changed since the last sync, so that a sync translates those again
//! instead of every Service and slice.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::Event;

/// A Service's namespace and name.
pub type ServiceName = (String, String);

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The Services touched since the last [`Changes::take`].
#[derive(Debug, Default)]
pub struct Changes {
    /// A watch listed everything again: every Service is translated again.
    all: bool,
    services: BTreeSet<ServiceName>,
    /// The Service each slice named when last seen, so a slice that moves to another Service
    /// (or goes away) touches the one it left.
    slice_owner: HashMap<String, ServiceName>,
}

/// What a sync must translate again.
#[derive(Debug, PartialEq, Eq)]
pub enum Touched {
    All,
    Some(BTreeSet<ServiceName>),
}

impl Changes {
    /// Starts with everything touched: the first sync translates every Service.
    pub fn new() -> Self {
        Changes {
            all: true,
            ..Changes::default()
        }
    }

    pub fn service_event(&mut self, event: &Event<Service>) {
        match event {
            Event::Apply(svc) | Event::InitApply(svc) | Event::Delete(svc) => {
                let meta = &svc.metadata;
                if let (Some(ns), Some(name)) = (&meta.namespace, &meta.name) {
                    self.services.insert((ns.clone(), name.clone()));
                }
            }
            Event::Init => self.all = true,
            Event::InitDone => {}
        }
    }

    pub fn slice_event(&mut self, event: &Event<EndpointSlice>) {
        let (slice, gone) = match event {
            Event::Apply(slice) | Event::InitApply(slice) => (slice, false),
            Event::Delete(slice) => (slice, true),
            Event::Init => {
                self.all = true;
                return;
            }
            Event::InitDone => return,
        };
        let meta = &slice.metadata;
        let uid = meta.uid.clone().unwrap_or_default();
        let owner = meta
            .namespace
            .as_ref()
            .zip(meta.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)));
        let owner = owner.map(|(ns, name)| (ns.clone(), name.clone()));
        self.services.extend(owner.clone());
        let before = match owner {
            Some(owner) if !gone => self.slice_owner.insert(uid, owner),
            _ => self.slice_owner.remove(&uid),
        };
        self.services.extend(before);
    }

    /// What changed since the last call; starts over.
    pub fn take(&mut self) -> Touched {
        let services = std::mem::take(&mut self.services);
        if std::mem::take(&mut self.all) {
            Touched::All
        } else {
            Touched::Some(services)
        }
    }

    /// Everything is to be translated again (the configuration changed, a sync failed).
    pub fn touch_all(&mut self) {
        self.all = true;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slice(uid: &str, service: &str) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": { "name": uid, "uid": uid, "namespace": "ns",
                          "labels": { SERVICE_NAME_LABEL: service } },
            "addressType": "IPv4", "endpoints": [],
        }))
        .unwrap()
    }

    fn names(list: &[&str]) -> Touched {
        Touched::Some(
            list.iter()
                .map(|n| ("ns".to_owned(), (*n).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn a_slice_that_moves_touches_both_services_and_one_that_goes_its_last() {
        let mut changes = Changes::new();
        changes.slice_event(&Event::Apply(slice("s1", "a")));
        assert_eq!(
            changes.take(),
            Touched::All,
            "the first sync sees everything"
        );
        changes.slice_event(&Event::Apply(slice("s1", "b")));
        assert_eq!(changes.take(), names(&["a", "b"]));
        changes.slice_event(&Event::Delete(slice("s1", "b")));
        assert_eq!(changes.take(), names(&["b"]));
        assert_eq!(changes.take(), names(&[]));
        changes.slice_event(&Event::Init);
        assert_eq!(changes.take(), Touched::All, "a relist touches everything");
    }
}
