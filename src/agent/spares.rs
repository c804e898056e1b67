//! Keeping the agent's spare ports (see [`crate::attach::SparePorts`]) at their target.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ratelimit::Verdict;
use super::worker::error_chain;
use super::{AgentConfig, Shared};
use crate::attach::{Attacher, HostPlumbing, SparePorts};
use crate::openstack::Port;

/// How often the refill checks whether the agent is idle.
const IDLE_CHECK: Duration = Duration::from_millis(100);

/// How long the agent must have been idle before the refill creates a spare. Longer than
/// the gap between a container's `create` and `start` events, so that a refill does not
/// load Neutron while a container that just took a spare turns ACTIVE.
const IDLE_BEFORE_REFILL: Duration = Duration::from_secs(1);

/// How long the refill waits after a failed create.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// Sets up the spare ports of the first default network, or returns `None` when the agent
/// keeps none or that network cannot be looked up.
pub(super) async fn setup(
    config: &AgentConfig,
    attacher: &Attacher<HostPlumbing>,
) -> Option<Arc<SparePorts>> {
    if config.spare_ports == 0 {
        return None;
    }
    let network = config.default_networks.first()?;
    match attacher.network(network).await {
        Ok(info) => Some(Arc::new(SparePorts::new(
            info.network.id.clone(),
            config.spare_ports,
        ))),
        Err(err) => {
            tracing::warn!(network = %network, error = %error_chain(&err), "no spare ports: the network lookup failed");
            None
        }
    }
}

/// Creates spares, one at a time and only after the agent has been idle for a while, so
/// that a refill seldom competes with an attach for Neutron. Runs until the agent stops.
pub(super) async fn refill(shared: Arc<Shared>, spares: Arc<SparePorts>) {
    loop {
        // Woken by the first adoption in reconcile and by every spare taken.
        spares.refill_needed().await;
        while spares.missing() > 0 {
            wait_idle(&shared).await;
            match shared
                .attacher
                .create_spare(&spares, &shared.data_root)
                .await
            {
                Ok(port) => {
                    tracing::info!(port = %port.id, network = %spares.network_id(), "spare port created");
                    spares.add(port);
                }
                Err(err) => {
                    if let Verdict::Log { suppressed_before } = shared.limiter.check("spare") {
                        tracing::warn!(network = %spares.network_id(), retry_in_s = RETRY_AFTER_FAILURE.as_secs(), suppressed_before, error = %error_chain(&err), "spare port create failed; retrying");
                    }
                    tokio::time::sleep(RETRY_AFTER_FAILURE).await;
                }
            }
        }
    }
}

/// Returns once no container event has been worked on for [`IDLE_BEFORE_REFILL`].
async fn wait_idle(shared: &Shared) {
    let all = shared.config.concurrency.max(1);
    let mut idle_since = Instant::now();
    loop {
        let busy = shared.permits.available_permits() < all
            || shared.prepare_permits.available_permits() < all;
        if busy {
            idle_since = Instant::now();
        } else if idle_since.elapsed() >= IDLE_BEFORE_REFILL {
            return;
        }
        tokio::time::sleep(IDLE_CHECK).await;
    }
}

/// Deletes `ports`, spares that the agent no longer needs, and returns how many it deleted.
/// Failures are logged.
pub(super) async fn delete(shared: &Shared, ports: Vec<Port>, reason: &str) -> usize {
    let mut deleted = 0;
    for port in ports {
        match shared.attacher.neutron().delete_port(&port.id).await {
            Ok(_) => {
                deleted += 1;
                tracing::info!(port = %port.id, reason, "spare port deleted");
            }
            Err(err) => {
                tracing::warn!(port = %port.id, error = %error_chain(&err), "spare port delete failed; delete it with `openstack port delete`")
            }
        }
    }
    deleted
}
