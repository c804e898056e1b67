//! The reconcile pass: bring Neutron ports and OVS rows in line with the containers.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::decide::{self, Action, HostState, OvsRow, PortState, RunningContainer, Wanted};
use super::labels::{self, Decision};
use super::worker::error_chain;
use super::{Dispatcher, Shared};
use crate::attach::{Plumbing, DEVICE_OWNER, OVS_KEY_IFNAME};
use crate::openstack::{Port, PortFilters};
use crate::plumbing;

/// Counts of what one pass did, for its summary line.
#[derive(Debug, Default)]
struct Summary {
    running: usize,
    ports: usize,
    attaches: usize,
    ports_deleted: usize,
    rows_removed: usize,
    failures: usize,
}

/// Runs one reconcile pass. Failures are logged and counted, never returned: the next
/// reconnect of the event stream reconciles again.
pub(super) async fn run(shared: &Shared, dispatcher: &mut Dispatcher) {
    let started = Instant::now();
    let mut summary = Summary::default();
    let (ports, host) = match host_state(shared).await {
        Ok(state) => state,
        Err(err) => {
            tracing::error!(error = %err, "reconcile failed: could not read the ports and OVS rows of this host");
            return;
        }
    };
    let running = match running_containers(shared).await {
        Ok(running) => running,
        Err(err) => {
            tracing::error!(error = %err, "reconcile failed: could not list containers");
            return;
        }
    };
    let existing: HashSet<String> = match shared.docker.list_all_ids().await {
        Ok(ids) => ids.into_iter().collect(),
        Err(err) => {
            tracing::error!(error = %error_chain(&err), "reconcile failed: could not list containers");
            return;
        }
    };
    summary.running = running.len();
    summary.ports = ports.len();
    shared
        .metrics
        .ports_managed
        .set(i64::try_from(ports.len()).unwrap_or(i64::MAX));

    let plan = decide::reconcile(&running, &existing, &host);
    execute(shared, dispatcher, plan, &ports, &mut summary).await;
    tracing::info!(
        running = summary.running,
        ports = summary.ports,
        attaches = summary.attaches,
        ports_deleted = summary.ports_deleted,
        ovs_rows_removed = summary.rows_removed,
        failures = summary.failures,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "reconciled"
    );
}

/// Reads this host's container ports from Neutron and Clampify's rows from OVS.
///
/// Ports plugged into named namespaces by `clampify create` belong to no container, so they
/// are left out: reconcile must not take them for ports of removed containers.
async fn host_state(shared: &Shared) -> Result<(HashMap<String, Port>, HostState), String> {
    let filter = PortFilters {
        device_owner: Some(DEVICE_OWNER.to_string()),
        host_id: Some(shared.attacher.host().to_string()),
        ..PortFilters::default()
    };
    let ports: HashMap<String, Port> = shared
        .attacher
        .neutron()
        .list_ports(&filter)
        .await
        .map_err(|err| error_chain(&err))?
        .into_iter()
        .filter(|port| is_container_id(&port.device_id))
        .map(|port| (port.id.clone(), port))
        .collect();
    let rows = shared
        .attacher
        .plumbing()
        .interfaces()
        .await
        .map_err(|err| error_chain(&err))?;

    let mut ovs_rows = Vec::new();
    for row in rows
        .into_iter()
        .filter(|row| row.external_ids.contains_key(OVS_KEY_IFNAME))
    {
        let iface_id = row.external_ids.get("iface-id").cloned();
        // Rows of `clampify create` ports are not the agent's either.
        if iface_id.as_ref().is_some_and(|id| !ports.contains_key(id))
            && is_netns_row(&row.external_ids)
        {
            continue;
        }
        let link_exists = plumbing::link_exists(&row.name)
            .await
            .map_err(|err| error_chain(&err))?;
        ovs_rows.push(OvsRow {
            ifname: row.name,
            iface_id,
            link_exists,
        });
    }
    let states = ports
        .values()
        .map(|port| PortState {
            id: port.id.clone(),
            device_id: port.device_id.clone(),
            network_id: port.network_id.clone(),
            status: port.status.clone(),
        })
        .collect();
    Ok((
        ports,
        HostState {
            ports: states,
            ovs_rows,
        },
    ))
}

fn is_container_id(device_id: &str) -> bool {
    device_id.len() == 64 && device_id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_netns_row(external_ids: &std::collections::BTreeMap<String, String>) -> bool {
    external_ids
        .get("vm-uuid")
        .is_some_and(|id| !is_container_id(id))
}

/// Lists running containers with the networks each wants, resolved to network IDs.
async fn running_containers(shared: &Shared) -> Result<Vec<RunningContainer>, String> {
    let containers = shared
        .docker
        .list_running()
        .await
        .map_err(|err| error_chain(&err))?;
    let mut running = Vec::new();
    for container in containers {
        let decision = labels::evaluate(
            &container.labels,
            &container.network_mode,
            &shared.config.default_networks,
        );
        let wanted = match decision {
            Ok(Decision::Attach(spec)) => {
                let mut ids = Vec::new();
                for network in &spec.networks {
                    // An unknown or forbidden network is reported when the attach runs.
                    match shared.attacher.network(network).await {
                        Ok(info) => ids.push(info.network.id.clone()),
                        Err(_) => ids.push(network.clone()),
                    }
                }
                Wanted::Networks(ids)
            }
            Ok(Decision::Skip(_)) | Err(_) => Wanted::Skip,
        };
        running.push(RunningContainer {
            id: container.id,
            wanted,
        });
    }
    Ok(running)
}

async fn execute(
    shared: &Shared,
    dispatcher: &mut Dispatcher,
    plan: Vec<Action>,
    ports: &HashMap<String, Port>,
    summary: &mut Summary,
) {
    let mut queued = HashSet::new();
    for action in plan {
        match action {
            Action::RemoveOvsRow { ifname } => {
                match shared.attacher.plumbing().unplug(&ifname).await {
                    Ok(_) => {
                        summary.rows_removed += 1;
                        shared.metrics.reconcile_action("remove_ovs_row");
                        tracing::info!(host_ifname = %ifname, "removed stale OVS port");
                    }
                    Err(err) => {
                        summary.failures += 1;
                        tracing::warn!(host_ifname = %ifname, error = %error_chain(&err), "could not remove stale OVS port");
                    }
                }
            }
            Action::DeletePort { port_id, device_id } => {
                let Some(port) = ports.get(&port_id) else {
                    continue;
                };
                match shared.attacher.detach(port).await {
                    Ok(_) => {
                        summary.ports_deleted += 1;
                        shared.metrics.reconcile_action("delete_port");
                        tracing::info!(port = %port_id, container = %device_id, "deleted port of removed container");
                    }
                    Err(err) => {
                        summary.failures += 1;
                        tracing::warn!(port = %port_id, container = %device_id, error = %error_chain(&err), "could not delete port of removed container");
                    }
                }
            }
            Action::Attach { container, .. } => {
                // The start handler attaches every network of the container, reusing ports.
                if queued.insert(container.clone()) {
                    summary.attaches += 1;
                    shared.metrics.reconcile_action("attach");
                    dispatcher.dispatch_attach(container, String::new());
                }
            }
        }
    }
}
