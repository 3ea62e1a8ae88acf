//! Which Services the watches changed since the last sync, so that a sync translates those again
//! instead of every Service and slice.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::Event;

use crate::from_kube::slice_owner;

/// A Service's namespace and name.
pub type ServiceName = (String, String);

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
        let uid = slice.metadata.uid.clone().unwrap_or_default();
        let owner = slice_owner(slice).map(|(ns, name)| (ns.to_owned(), name.to_owned()));
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::from_kube::SERVICE_NAME_LABEL;
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
