//! The reconcile pass: bring Neutron ports and OVS rows in line with the containers.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::decide::{self, Action, HostState, OvsRow, PortState, RunningContainer, Wanted};
use super::labels::{self, Decision};
use super::worker::{error_chain, network_name, port_ips};
use super::{spares, Dispatcher, Shared};
use crate::attach::{
    dockerd_data_root, netns_label, spare_data_root, Plumbing, DEVICE_OWNER, OVS_KEY_IFNAME,
    OVS_KEY_NETNS,
};
use crate::docker::is_container_id;
use crate::openstack::{Port, PortFilters};
use crate::plumbing::{self, Netns};

/// Counts of what one pass did, for its summary line.
#[derive(Debug, Default)]
struct Summary {
    running: usize,
    ports: usize,
    /// Ports of missing containers that were created for another dockerd, left alone.
    foreign_ports: usize,
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
    let (ports, host, own_spares) = match host_state(shared).await {
        Ok(state) => state,
        Err(err) => {
            tracing::error!(host = %shared.attacher.host(), error = %err, "reconcile failed: could not read the ports and OVS rows of this host");
            return;
        }
    };
    let running = match running_containers(shared).await {
        Ok(running) => running,
        Err(err) => {
            tracing::error!(docker = %shared.docker.endpoint(), error = %err, "reconcile failed: could not list containers");
            return;
        }
    };
    let existing: HashSet<String> = match shared.docker.list_all_ids().await {
        Ok(ids) => ids.into_iter().collect(),
        Err(err) => {
            tracing::error!(docker = %shared.docker.endpoint(), error = %error_chain(&err), "reconcile failed: could not list containers");
            return;
        }
    };
    summary.running = running.len();
    summary.ports = ports.len();
    summary.foreign_ports = count_foreign(&host, &running, &existing);
    shared
        .metrics
        .ports_managed
        .set(i64::try_from(ports.len()).unwrap_or(i64::MAX));

    let plan = decide::reconcile(&running, &existing, &host);
    execute(shared, dispatcher, plan, &ports, &mut summary).await;
    // Spares left by an earlier run: adopted when the agent keeps spares, else deleted.
    let unneeded = match &shared.spares {
        Some(spares) => spares.adopt(own_spares),
        None => own_spares,
    };
    summary.ports_deleted += spares::delete(shared, unneeded, "not needed").await;
    tracing::info!(
        running = summary.running,
        ports = summary.ports,
        foreign_ports = summary.foreign_ports,
        attaches = summary.attaches,
        ports_deleted = summary.ports_deleted,
        ovs_rows_removed = summary.rows_removed,
        failures = summary.failures,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "reconciled"
    );
}

/// Reads Clampify's rows from OVS and then this host's container ports from Neutron, in the
/// order that [`HostState`] requires.
///
/// Ports plugged into named namespaces by `clampify create` belong to no container, so they
/// are left out: reconcile must not take them for ports of removed containers. Spare ports
/// of this agent's dockerd are returned apart.
async fn host_state(
    shared: &Shared,
) -> Result<(HashMap<String, Port>, HostState, Vec<Port>), String> {
    let rows = shared
        .attacher
        .plumbing()
        .interfaces()
        .await
        .map_err(|err| error_chain(&err))?;
    let filter = PortFilters {
        device_owner: Some(DEVICE_OWNER.to_string()),
        host_id: Some(shared.attacher.host().to_string()),
        ..PortFilters::default()
    };
    let listed = shared.attacher.neutron().list_ports(&filter).await;
    shared
        .metrics
        .neutron_up
        .store(listed.is_ok(), Ordering::Relaxed);
    let listed = listed.map_err(|err| error_chain(&err))?;
    // Later starts read the container's ports from this listing instead of asking Neutron.
    shared.attacher.port_cache().seed(&listed);
    let own_spares: Vec<Port> = listed
        .iter()
        .filter(|port| spare_data_root(port) == Some(shared.data_root.as_str()))
        .cloned()
        .collect();
    let ports: HashMap<String, Port> = listed
        .into_iter()
        .filter(|port| is_container_id(&port.device_id))
        .map(|port| (port.id.clone(), port))
        .collect();

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
            netns: row.external_ids.get(OVS_KEY_NETNS).cloned(),
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
            owned: dockerd_data_root(port) == Some(shared.data_root.as_str()),
        })
        .collect();
    Ok((
        ports,
        HostState {
            ports: states,
            ovs_rows,
        },
        own_spares,
    ))
}

/// Counts the ports that reconcile leaves alone because their container is missing here
/// and they were created for another dockerd (see [`decide::reconcile`]).
fn count_foreign(
    host: &HostState,
    running: &[RunningContainer],
    existing: &HashSet<String>,
) -> usize {
    let foreign = host.ports.iter().filter(|port| {
        !port.owned
            && !existing.contains(&port.device_id)
            && !running.iter().any(|c| c.id == port.device_id)
    });
    let mut count = 0;
    for port in foreign {
        tracing::debug!(port = %port.id, container = %port.device_id, "port of a container missing from this dockerd was not created for it; left alone");
        count += 1;
    }
    count
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
            netns: container
                .netns_path
                .map(|path| netns_label(&Netns::from_path(path))),
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
            Action::RemoveOvsRow { ifname } => remove_stale_row(shared, &ifname, summary).await,
            Action::DeletePort { port_id, device_id } => {
                if let Some(port) = ports.get(&port_id) {
                    delete_orphan(shared, port, &device_id, summary).await;
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

async fn remove_stale_row(shared: &Shared, ifname: &str, summary: &mut Summary) {
    match shared.attacher.plumbing().unplug(ifname).await {
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

async fn delete_orphan(shared: &Shared, port: &Port, device_id: &str, summary: &mut Summary) {
    let started = Instant::now();
    match shared.attacher.detach(port).await {
        Ok(_) => {
            summary.ports_deleted += 1;
            shared.metrics.reconcile_action("delete_port");
            shared.metrics.ports_managed.dec();
            let network = network_name(shared, &port.network_id).await;
            tracing::info!(port = %port.id, container = %device_id, network = %network, ips = ?port_ips(port), elapsed_ms = started.elapsed().as_millis() as u64, "deleted port of removed container");
        }
        Err(err) => {
            summary.failures += 1;
            tracing::warn!(port = %port.id, container = %device_id, error = %error_chain(&err), "could not delete port of removed container");
        }
    }
}
