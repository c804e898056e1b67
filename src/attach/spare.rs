//! Spare ports: ports created ahead on one network and bound to this host, so that a new
//! container takes one with a PUT instead of waiting for a POST.
//!
//! On the lab, a port create took Neutron about 270 ms and an update about 120 ms. The agent
//! sends either between Docker's `create` and `start` events, which came about 200 ms apart,
//! so only the update fits in that gap.
//!
//! Neutron stays the source of truth: a spare is an ordinary Clampify port whose
//! `device_id` is [`SPARE_DEVICE_ID`] and whose description names its dockerd, so an agent
//! that restarts finds its spares again in the port listing of its reconcile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde_json::json;
use tokio::sync::Notify;

use super::container::{container_description, port_name};
use super::{AttachError, Attacher, ContainerRef, NewPort, Plumbing, DESCRIPTION_CREATED};
use crate::openstack::Port;

/// `device_id` and name of a spare port.
pub const SPARE_DEVICE_ID: &str = "clampify-spare";

/// Text between [`DESCRIPTION_CREATED`] and the data root in a spare's description.
const DESCRIPTION_SPARE: &str = " as a spare for the dockerd with data root ";

/// Returns the description of a spare port for the dockerd whose data root is `data_root`.
pub fn spare_port_description(data_root: &str) -> String {
    format!("{DESCRIPTION_CREATED}{DESCRIPTION_SPARE}{data_root}")
}

/// Returns the data root of the dockerd whose agent created spare `port`, or `None` when
/// the port is not a spare.
pub fn spare_data_root(port: &Port) -> Option<&str> {
    if port.device_id != SPARE_DEVICE_ID {
        return None;
    }
    port.description
        .strip_prefix(DESCRIPTION_CREATED)?
        .strip_prefix(DESCRIPTION_SPARE)
        .filter(|root| !root.is_empty())
}

/// The spare ports of one network, and how many there should be.
#[derive(Debug)]
pub struct SparePorts {
    network_id: String,
    target: usize,
    ports: Mutex<Vec<Port>>,
    /// Set once the ports left by an earlier run have been adopted.
    adopted: AtomicBool,
    /// Wakes the refill when a spare was taken or the first adoption happened.
    refill_needed: Notify,
}

impl SparePorts {
    pub fn new(network_id: String, target: usize) -> Self {
        Self {
            network_id,
            target,
            ports: Mutex::new(Vec::new()),
            adopted: AtomicBool::new(false),
            refill_needed: Notify::new(),
        }
    }

    pub fn network_id(&self) -> &str {
        &self.network_id
    }

    /// Takes one spare, if there is one, and wakes the refill.
    pub fn take(&self) -> Option<Port> {
        let port = self.ports.lock().ok()?.pop();
        self.refill_needed.notify_one();
        port
    }

    /// Adds a newly created spare.
    pub fn add(&self, port: Port) {
        if let Ok(mut ports) = self.ports.lock() {
            ports.push(port);
        }
    }

    /// Returns how many spares are missing from the target.
    pub fn missing(&self) -> usize {
        let have = self.ports.lock().map(|ports| ports.len()).unwrap_or(0);
        self.target.saturating_sub(have)
    }

    /// Takes over `found`, the spares of this agent's dockerd that Neutron lists, the first
    /// time it is called. Returns the ports to delete: those of other networks and those
    /// beyond the target.
    ///
    /// Later calls change nothing and return nothing, because a later listing may still
    /// show as spare a port that a container is taking at that moment.
    pub fn adopt(&self, found: Vec<Port>) -> Vec<Port> {
        if self.adopted.swap(true, Ordering::SeqCst) {
            return Vec::new();
        }
        let Ok(mut ports) = self.ports.lock() else {
            return Vec::new();
        };
        let mut extra = Vec::new();
        for port in found {
            if port.network_id == self.network_id && ports.len() < self.target {
                ports.push(port);
            } else {
                extra.push(port);
            }
        }
        drop(ports);
        self.refill_needed.notify_one();
        extra
    }

    /// Waits until a spare was taken or the first adoption happened.
    pub async fn refill_needed(&self) {
        self.refill_needed.notified().await;
    }

    /// Removes and returns every spare, for deletion at shutdown.
    pub fn drain(&self) -> Vec<Port> {
        self.ports
            .lock()
            .map(|mut ports| std::mem::take(&mut *ports))
            .unwrap_or_default()
    }
}

impl<P: Plumbing> Attacher<P> {
    /// Creates one spare port on the network of `spares`, for the dockerd with `data_root`.
    pub async fn create_spare(
        &self,
        spares: &SparePorts,
        data_root: &str,
    ) -> Result<Port, AttachError> {
        let info = self.network(spares.network_id()).await?;
        let description = spare_port_description(data_root);
        let new_port = NewPort {
            device_id: SPARE_DEVICE_ID,
            name: SPARE_DEVICE_ID,
            ips: &[],
            security_groups: &[],
            description: &description,
        };
        self.create_port(spares.network_id(), &info, &new_port)
            .await
    }

    /// Gives spare `port` to `container`: its `device_id`, name and description become those
    /// of a port created for the container.
    pub(super) async fn claim_spare(
        &self,
        port: &Port,
        container: &ContainerRef<'_>,
    ) -> Result<Port, AttachError> {
        let attributes = json!({
            "device_id": container.id,
            "name": port_name(container.name),
            "description": container_description(container.data_root),
        });
        self.neutron
            .update_port(&port.id, &attributes)
            .await
            .map_err(|source| AttachError::ClaimSpare {
                port: port.id.clone(),
                device: container.id.to_owned(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(id: &str, network_id: &str, device_id: &str, description: &str) -> Port {
        let json = serde_json::json!({
            "id": id,
            "network_id": network_id,
            "mac_address": "fa:16:3e:00:00:01",
            "fixed_ips": [],
            "status": "DOWN",
            "device_id": device_id,
            "device_owner": super::super::DEVICE_OWNER,
            "description": description,
        });
        serde_json::from_value(json).expect("a valid port")
    }

    fn spare(id: &str, network_id: &str) -> Port {
        port(
            id,
            network_id,
            SPARE_DEVICE_ID,
            &spare_port_description("/var/lib/docker"),
        )
    }

    #[test]
    fn spare_description_round_trips() {
        let spare = spare("p1", "n1");
        let container_port = port(
            "p2",
            "n1",
            "e9264676f3903478472f9002f6fb26eddb44072870d7199df6c6d1d2eb4e618f",
            &spare_port_description("/var/lib/docker"),
        );

        assert_eq!(
            spare.description,
            "created by clampify as a spare for the dockerd with data root /var/lib/docker"
        );
        assert_eq!(spare_data_root(&spare), Some("/var/lib/docker"));
        assert_eq!(spare_data_root(&container_port), None);
        assert!(super::super::created_by_clampify(&spare));
    }

    #[test]
    fn first_adoption_keeps_target_on_network() {
        let spares = SparePorts::new("n1".to_owned(), 2);

        let extra = spares.adopt(vec![
            spare("a", "n1"),
            spare("b", "n2"),
            spare("c", "n1"),
            spare("d", "n1"),
        ]);

        let extra_ids: Vec<&str> = extra.iter().map(|port| port.id.as_str()).collect();
        assert_eq!(extra_ids, ["b", "d"]);
        assert_eq!(spares.missing(), 0);
    }

    #[test]
    fn later_adoption_changes_nothing() {
        let spares = SparePorts::new("n1".to_owned(), 2);
        spares.adopt(vec![spare("a", "n1")]);

        let extra = spares.adopt(vec![spare("a", "n1"), spare("z", "n1")]);

        assert!(extra.is_empty(), "{extra:?}");
        assert_eq!(spares.missing(), 1);
    }

    #[test]
    fn take_empties_and_drain_returns_rest() {
        let spares = SparePorts::new("n1".to_owned(), 3);
        spares.add(spare("a", "n1"));
        spares.add(spare("b", "n1"));

        let taken = spares.take().map(|port| port.id);
        let rest: Vec<String> = spares.drain().into_iter().map(|port| port.id).collect();

        assert_eq!(taken.as_deref(), Some("b"));
        assert_eq!(rest, ["a"]);
        assert_eq!(spares.missing(), 3);
        assert!(spares.take().is_none());
    }
}
