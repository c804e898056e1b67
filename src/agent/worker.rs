//! Handling one container event: create the port ahead on `create`, attach on `start`, clean
//! up on `die` and `destroy`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use ipnet::IpNet;

use super::backoff::{Backoff, BackoffPolicy};
use super::labels::{self, AttachSpec, Decision, ResolvedNetwork};
use super::ratelimit::Verdict;
use super::Shared;
use crate::attach::{
    AttachError, Attachment, ContainerRef, ContainerTarget, NetworkInfo, NetworkRequest, Plumbing,
    PortAction,
};
use crate::docker::{ContainerEvent, ContainerInfo, DockerError, EventAction};
use crate::openstack::Port;
use crate::plumbing::{self, host_ifname, Netns};

/// Why handling an event failed, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub(super) enum WorkError {
    /// The container requests something it may not have, so retrying changes nothing.
    #[error("{0}")]
    Rejected(String),

    #[error(transparent)]
    Docker(#[from] DockerError),

    #[error(transparent)]
    Attach(Box<AttachError>),

    #[error("write DNS servers to {path}: {source}")]
    Dns {
        path: String,
        source: std::io::Error,
    },
}

impl From<AttachError> for WorkError {
    fn from(err: AttachError) -> Self {
        Self::Attach(Box::new(err))
    }
}

impl WorkError {
    fn is_retryable(&self) -> bool {
        !matches!(self, Self::Rejected(_))
    }
}

/// Handles one event, retrying with backoff; failures are logged here, never returned.
pub(super) async fn handle(shared: &Shared, event: ContainerEvent) {
    if event.action == EventAction::Create {
        prepare(shared, &event).await;
        return;
    }
    let Ok(_permit) = shared.permits.acquire().await else {
        return;
    };
    let policy = BackoffPolicy {
        max_attempts: Some(shared.config.max_attempts.max(1)),
        ..BackoffPolicy::PER_CONTAINER
    };
    let mut backoff = Backoff::new(policy);
    let mut attempt = 1;
    loop {
        let result = match event.action {
            // Handled above, once and without retries.
            EventAction::Create => return,
            EventAction::Start => start(shared, &event).await,
            EventAction::Die => die(shared, &event).await,
            EventAction::Destroy => destroy(shared, &event).await,
        };
        let err = match result {
            Ok(()) => return,
            Err(err) => err,
        };
        // The cached ports may be what went wrong (a port deleted behind the agent's back):
        // the next attempt lists them from Neutron.
        shared.attacher.port_cache().forget(&event.id);
        let action = event.action.as_str();
        match backoff.next_delay() {
            Some(delay) if err.is_retryable() => {
                if let Verdict::Log { suppressed_before } = shared.limiter.check("retry") {
                    tracing::warn!(container = %event.id, name = %event.name, action, attempt, retry_in_ms = delay.as_millis() as u64, suppressed_before, error = %error_chain(&err), "container event failed; retrying");
                }
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            _ => {
                if event.action == EventAction::Start {
                    shared.metrics.attach_failures.inc();
                }
                if let Verdict::Log { suppressed_before } = shared.limiter.check("failed") {
                    tracing::error!(container = %event.id, name = %event.name, action, attempts = attempt, suppressed_before, error = %error_chain(&err), "container event failed");
                }
                return;
            }
        }
    }
}

/// Renders an error and its sources on one line, as the CLI does.
pub(super) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The networks a container gets, once its labels and the policy have been checked.
enum Plan {
    Skip(String),
    Attach {
        spec: AttachSpec,
        networks: Vec<Arc<NetworkInfo>>,
    },
}

/// Reads the container's labels and checks every network it requests against the policy
/// before anything is made, so a rejected label leaves no partial attachment behind.
async fn plan(shared: &Shared, container: &ContainerInfo) -> Result<Plan, WorkError> {
    let spec = match labels::evaluate(
        &container.labels,
        &container.network_mode,
        &shared.config.default_networks,
    ) {
        Ok(Decision::Attach(spec)) => spec,
        Ok(Decision::Skip(reason)) => return Ok(Plan::Skip(reason.to_string())),
        Err(err) => {
            return Err(WorkError::Rejected(format!(
                "container {}: {err}",
                container.name
            )))
        }
    };
    let mut networks = Vec::new();
    for network in &spec.networks {
        networks.push(allowed_network(shared, container, &spec, network).await?);
    }
    let subnets: Vec<IpNet> = networks
        .iter()
        .flat_map(|info| info.subnets.iter().map(|subnet| subnet.cidr))
        .collect();
    labels::check_ips_in_subnets(&spec.ips, &subnets)
        .map_err(|err| WorkError::Rejected(format!("container {}: {err}", container.name)))?;
    Ok(Plan::Attach { spec, networks })
}

/// Creates the ports of a container that was just created, so that its start only plugs
/// them. One attempt, no retries: on any failure the start creates what is missing and
/// reports the error then.
async fn prepare(shared: &Shared, event: &ContainerEvent) {
    let Ok(_permit) = shared.prepare_permits.acquire().await else {
        return;
    };
    let result = async {
        let container = shared.docker.inspect(&event.id).await?;
        let Plan::Attach { spec, networks } = plan(shared, &container).await? else {
            return Ok(());
        };
        let reference = ContainerRef {
            id: &container.id,
            name: &container.name,
            data_root: Some(&shared.data_root),
        };
        for info in networks {
            let request = network_request(shared, &spec, &info);
            if let Some(prepared) = shared
                .attacher
                .prepare_container_port(&reference, &request, shared.spares.as_deref())
                .await?
            {
                shared.metrics.ports_managed.inc();
                tracing::info!(container = %container.id, name = %container.name, port = %prepared.port.id, network = %info.network.name, from_spare = prepared.from_spare, "port ready before the container starts");
            }
        }
        Ok::<(), WorkError>(())
    }
    .await;
    if let Err(err) = result {
        tracing::debug!(container = %event.id, name = %event.name, error = %error_chain(&err), "port not created ahead of the start, which creates it instead");
    }
}

/// Returns the port request for one network: the container's fixed IPs in that network's
/// subnets, its security groups, and the agent's ACTIVE timeout.
fn network_request(shared: &Shared, spec: &AttachSpec, info: &NetworkInfo) -> NetworkRequest {
    let ips: Vec<IpAddr> = spec
        .ips
        .iter()
        .copied()
        .filter(|ip| info.subnets.iter().any(|s| s.cidr.contains(ip)))
        .collect();
    NetworkRequest {
        network: info.network.id.clone(),
        ips,
        security_groups: spec.security_groups.clone(),
        wait: Some(shared.config.active_timeout),
    }
}

async fn start(shared: &Shared, event: &ContainerEvent) -> Result<(), WorkError> {
    let container = match shared.docker.inspect(&event.id).await {
        Ok(container) => container,
        // Removed before we got to it: its destroy event cleans up.
        Err(err) if err.is_not_found() => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    if !container.running {
        return Ok(());
    }
    let (spec, networks) = match plan(shared, &container).await? {
        Plan::Attach { spec, networks } => (spec, networks),
        Plan::Skip(reason) => {
            if let Verdict::Log { .. } = shared.limiter.check("skip") {
                tracing::info!(container = %container.id, name = %container.name, reason = %reason, "container left alone");
            }
            return Ok(());
        }
    };
    let Some(netns_path) = container.netns_path.clone() else {
        return Ok(());
    };
    let target = ContainerTarget {
        id: container.id.clone(),
        name: container.name.clone(),
        netns: Netns::from_path(netns_path),
        data_root: Some(shared.data_root.clone()),
    };

    let mut dns = Vec::new();
    for info in networks {
        let attachment = attach_network(shared, &container, &target, &spec, &info).await?;
        for server in attachment.dns_nameservers {
            if !dns.contains(&server) {
                dns.push(server);
            }
        }
    }
    write_dns(&container, &dns)?;
    check_same_run(shared, &container).await
}

/// Looks up a network the container requests and checks it against the policy.
async fn allowed_network(
    shared: &Shared,
    container: &ContainerInfo,
    spec: &AttachSpec,
    network: &str,
) -> Result<Arc<NetworkInfo>, WorkError> {
    let info = shared.attacher.network(network).await?;
    let resolved = ResolvedNetwork {
        id: info.network.id.clone(),
        name: info.network.name.clone(),
        project_id: info.network.project_id.clone().unwrap_or_default(),
    };
    shared
        .config
        .policy
        .check(network, spec.networks_from, &resolved)
        .map_err(|reason| WorkError::Rejected(format!("container {}: {reason}", container.name)))?;
    Ok(info)
}

/// Attaches the container to one network, then counts and logs the attach unless the port
/// was plugged already.
async fn attach_network(
    shared: &Shared,
    container: &ContainerInfo,
    target: &ContainerTarget,
    spec: &AttachSpec,
    info: &NetworkInfo,
) -> Result<Attachment, WorkError> {
    let request = network_request(shared, spec, info);
    let started = Instant::now();
    let (attachment, action) = shared.attacher.attach_container(target, &request).await?;
    let elapsed = started.elapsed();

    if action == PortAction::Unchanged {
        tracing::debug!(container = %container.id, port = %attachment.port_id, network = %info.network.name, "container already attached");
        return Ok(attachment);
    }
    shared.metrics.attaches.inc();
    shared.metrics.attach_seconds.observe(elapsed.as_secs_f64());
    // A prepared port was counted when it was created.
    if action == PortAction::Created {
        shared.metrics.ports_managed.inc();
    }
    tracing::info!(container = %container.id, name = %container.name, port = %attachment.port_id, port_action = %action.as_str(), network = %info.network.name, ifname = %attachment.interface, ips = ?attachment.ip_addresses, elapsed_ms = elapsed.as_millis() as u64, "container attached");
    Ok(attachment)
}

/// PIDs are reused: after plugging into `/proc/PID/ns/net`, confirm the container still runs
/// as the same process. If not, the namespace was someone else's: the die event of the
/// container cleans up, and the retry attaches the new run.
async fn check_same_run(shared: &Shared, container: &ContainerInfo) -> Result<(), WorkError> {
    shared
        .docker
        .verify_netns(container)
        .await
        .map_err(WorkError::from)
}

fn write_dns(container: &ContainerInfo, servers: &[IpAddr]) -> Result<(), WorkError> {
    let Some(path) = &container.resolv_conf_path else {
        return Ok(());
    };
    if servers.is_empty() {
        return Ok(());
    }
    plumbing::write_resolv_conf(path, servers).map_err(|source| WorkError::Dns {
        path: path.display().to_string(),
        source,
    })
}

async fn die(shared: &Shared, event: &ContainerEvent) -> Result<(), WorkError> {
    // The kernel removed the veth with the namespace; the OVS row stays until removed.
    let ports = shared
        .attacher
        .container_ports(&event.id)
        .await
        .map_err(|source| AttachError::ListPorts {
            device: event.id.clone(),
            source,
        })?;
    for port in ports {
        let unplugged = shared
            .attacher
            .plumbing()
            .unplug(&host_ifname(&port.id))
            .await
            .map_err(|source| AttachError::Unplug {
                port: port.id.clone(),
                source: Box::new(source),
            })?;
        tracing::info!(container = %event.id, name = %event.name, port = %port.id, ovs_port_removed = unplugged.ovs_port, "container stopped; port kept for its restart");
    }
    Ok(())
}

async fn destroy(shared: &Shared, event: &ContainerEvent) -> Result<(), WorkError> {
    let ports = shared
        .attacher
        .container_ports(&event.id)
        .await
        .map_err(|source| AttachError::ListPorts {
            device: event.id.clone(),
            source,
        })?;
    for port in ports {
        let started = Instant::now();
        shared.attacher.detach(&port).await?;
        shared.metrics.detaches.inc();
        shared.metrics.ports_managed.dec();
        let network = network_name(shared, &port.network_id).await;
        tracing::info!(container = %event.id, name = %event.name, port = %port.id, network = %network, ips = ?port_ips(&port), elapsed_ms = started.elapsed().as_millis() as u64, "container removed; port deleted");
    }
    Ok(())
}

/// Returns the network's name for a log line, or its ID when the lookup fails.
pub(super) async fn network_name(shared: &Shared, network_id: &str) -> String {
    match shared.attacher.network(network_id).await {
        Ok(info) => info.network.name.clone(),
        Err(_) => network_id.to_owned(),
    }
}

/// Returns the port's fixed IPs, for a log line.
pub(super) fn port_ips(port: &Port) -> Vec<String> {
    port.fixed_ips
        .iter()
        .map(|fixed| fixed.ip_address.to_string())
        .collect()
}
