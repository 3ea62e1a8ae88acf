//! Which Service holds which values, as last seen through the watch.

use std::collections::{BTreeMap, HashMap};

use super::plan::Held;

/// Service (`namespace/name`) → the values it holds, and how many Services hold each value.
#[derive(Debug, Default, Clone)]
pub struct Holders {
    by_service: BTreeMap<String, Vec<Held>>,
    count: HashMap<Held, u32>,
}

impl Holders {
    /// Records what `service` holds now; returns the values nobody holds any more.
    pub fn set(&mut self, service: &str, held: Vec<Held>) -> Vec<Held> {
        for v in &held {
            *self.count.entry(*v).or_default() += 1;
        }
        let before = if held.is_empty() {
            self.by_service.remove(service)
        } else {
            self.by_service.insert(service.to_owned(), held)
        };
        self.forget(before.unwrap_or_default())
    }

    /// Forgets `service` (deleted); returns the values nobody holds any more.
    pub fn remove(&mut self, service: &str) -> Vec<Held> {
        let before = self.by_service.remove(service).unwrap_or_default();
        self.forget(before)
    }

    fn forget(&mut self, values: Vec<Held>) -> Vec<Held> {
        let mut freed = Vec::new();
        for v in values {
            if let Some(n) = self.count.get_mut(&v) {
                *n -= 1;
                if *n == 0 {
                    self.count.remove(&v);
                    freed.push(v);
                }
            }
        }
        freed
    }

    pub fn is_held(&self, value: Held) -> bool {
        self.count.contains_key(&value)
    }

    pub fn get(&self, service: &str) -> &[Held] {
        self.by_service.get(service).map_or(&[], Vec::as_slice)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Held])> {
        self.by_service
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Values more than one Service holds, with those Services.
    pub fn duplicates(&self) -> Vec<(Held, Vec<String>)> {
        let mut shared: BTreeMap<Held, Vec<String>> = BTreeMap::new();
        for (service, values) in &self.by_service {
            for v in values {
                if self.count.get(v).is_some_and(|&n| n > 1) {
                    shared.entry(*v).or_default().push(service.clone());
                }
            }
        }
        shared.into_iter().collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn port(p: u16) -> Held {
        Held::Port(p)
    }

    #[test]
    fn a_value_is_freed_when_its_last_holder_lets_go() {
        let mut h = Holders::default();
        assert!(h.set("a/x", vec![port(30001), port(30002)]).is_empty());
        assert!(h.set("a/y", vec![port(30002)]).is_empty());
        assert_eq!(
            h.duplicates(),
            vec![(port(30002), vec!["a/x".to_owned(), "a/y".to_owned()])]
        );
        assert_eq!(h.set("a/x", vec![port(30002)]), vec![port(30001)]);
        assert!(h.remove("a/x").is_empty());
        assert_eq!(h.remove("a/y"), vec![port(30002)]);
        assert!(!h.is_held(port(30002)));
    }
}
