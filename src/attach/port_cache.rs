//! A cache of each container's ports, so that a start costs no Neutron listing.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::openstack::Port;

/// Ports by `device_id`, filled from a full listing of this host's ports and kept up to date
/// with every port the attacher creates or deletes.
///
/// A container missing from a seeded cache has no port: every port of this host was in the
/// listing, and later ones were created here. The cache is a hint, not the truth. A caller
/// that finds a cached port gone calls [`PortCache::forget`], and the next lookup queries Neutron.
#[derive(Debug, Default)]
pub struct PortCache {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    seeded: bool,
    /// `None`: unknown, ask Neutron.
    ports: HashMap<String, Option<Vec<Port>>>,
}

impl PortCache {
    /// Records a listing of every Clampify port bound to this host. Containers the listing
    /// does not name keep what the cache has, because a port created during the listing
    /// may be missing from it.
    pub fn seed(&self, ports: &[Port]) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let mut listed: HashMap<String, Vec<Port>> = HashMap::new();
        for port in ports {
            listed
                .entry(port.device_id.clone())
                .or_default()
                .push(port.clone());
        }
        for (device, ports) in listed {
            state.ports.insert(device, Some(ports));
        }
        state.seeded = true;
    }

    /// Returns the cached ports of `device_id`, or `None` when only Neutron can tell.
    pub fn get(&self, device_id: &str) -> Option<Vec<Port>> {
        let state = self.state.lock().ok()?;
        match state.ports.get(device_id) {
            Some(known) => known.clone(),
            None if state.seeded => Some(Vec::new()),
            None => None,
        }
    }

    /// Stores the ports of `device_id` as Neutron listed them.
    pub fn put(&self, device_id: &str, ports: Vec<Port>) {
        if let Ok(mut state) = self.state.lock() {
            state.ports.insert(device_id.to_string(), Some(ports));
        }
    }

    /// Adds or replaces one port.
    pub fn insert(&self, port: &Port) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if let Some(Some(ports)) = state.ports.get_mut(&port.device_id) {
            ports.retain(|known| known.id != port.id);
            ports.push(port.clone());
        } else if state.seeded {
            state
                .ports
                .insert(port.device_id.clone(), Some(vec![port.clone()]));
        }
    }

    /// Drops one port that was deleted.
    pub fn remove(&self, port: &Port) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if let Some(Some(ports)) = state.ports.get_mut(&port.device_id) {
            ports.retain(|known| known.id != port.id);
        }
    }

    /// Marks what the cache has of `device_id` as unknown.
    pub fn forget(&self, device_id: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.ports.insert(device_id.to_string(), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(id: &str, device: &str) -> Port {
        serde_json::from_value(serde_json::json!({
            "id": id, "network_id": "net", "mac_address": "fa:16:3e:00:00:01",
            "device_id": device, "device_owner": "compute:clampify", "status": "ACTIVE",
        }))
        .unwrap()
    }

    #[test]
    fn unseeded_cache_defers_to_neutron() {
        let cache = PortCache::default();

        assert_eq!(cache.get("c1"), None);
    }

    #[test]
    fn seeded_cache_knows_absent_containers() {
        let cache = PortCache::default();
        cache.seed(&[port("p1", "c1")]);

        assert_eq!(cache.get("c1").map(|p| p.len()), Some(1));
        assert_eq!(cache.get("c2").map(|p| p.len()), Some(0));
    }

    #[test]
    fn insert_and_remove_track_changes() {
        let cache = PortCache::default();
        cache.seed(&[]);
        let created = port("p2", "c2");

        cache.insert(&created);
        assert_eq!(cache.get("c2").map(|p| p.len()), Some(1));
        cache.remove(&created);
        assert_eq!(cache.get("c2").map(|p| p.len()), Some(0));
    }

    #[test]
    fn forget_makes_container_unknown() {
        let cache = PortCache::default();
        cache.seed(&[port("p1", "c1")]);

        cache.forget("c1");

        assert_eq!(cache.get("c1"), None);
    }
}
