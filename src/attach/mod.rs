//! The attach and detach workflows: a Neutron port on one side, a veth pair on OVS on the other.
//!
//! [`Attacher`] is an orchestrator. It calls the Neutron client for the port and a
//! [`Plumbing`] implementation for everything local, and undoes what it made when a later
//! step fails.

mod config;
mod container;
mod host;
mod port_cache;
mod spare;
mod status;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Mutex;

pub use config::{interface_config, PortDataError};
pub use container::{
    container_port_description, dockerd_data_root, ContainerRef, ContainerTarget, NetworkRequest,
    PortAction, PreparedPort,
};
pub use host::HostPlumbing;
pub use port_cache::PortCache;
pub use spare::{spare_data_root, spare_port_description, SparePorts, SPARE_DEVICE_ID};
pub use status::StatusPoller;

use crate::openstack::{
    FixedIpRequest, Network, Neutron, NeutronError, Port, PortBinding, PortCreate, Subnet,
};
use crate::plumbing::{host_ifname, InterfaceConfig, Netns, PlumbingError};

/// `device_owner` of every port Clampify binds, following Nova's `compute:<zone>` form so
/// that Neutron treats it as a compute port (security groups, DHCP, DNS).
pub const DEVICE_OWNER: &str = "compute:clampify";

/// Tag sent with every port Clampify creates. Neutron stores tags sent in the POST only
/// when its `tag_ports_during_bulk_creation` extension driver is on, so Clampify relies on
/// the description below and treats the tag as a convenience for operators.
pub const TAG: &str = "clampify";

/// Start of the `description` of every port Clampify created. A Clampify-owned port with
/// another description was adopted with `create --port`, and `delete` keeps it.
pub const DESCRIPTION_CREATED: &str = "created by clampify";

/// `description` of a port whose network namespace `clampify create` made, so that
/// `delete` removes the namespace too.
pub const DESCRIPTION_NETNS_CREATED: &str = "created by clampify with its network namespace";

/// Name of the first interface Clampify plugs into a namespace.
const FIRST_IFNAME: &str = "eth0";

/// OVS `external_ids` key with the interface name inside the namespace.
pub const OVS_KEY_IFNAME: &str = "clampify-ifname";
/// OVS `external_ids` key with the namespace the port is plugged into.
pub const OVS_KEY_NETNS: &str = "clampify-netns";
/// OVS `external_ids` key set when `clampify create` made the namespace.
pub const OVS_KEY_NETNS_CREATED: &str = "clampify-netns-created";

/// The local side of an attachment: namespaces, veth pairs and the integration bridge.
///
/// [`HostPlumbing`] is the real implementation; tests use recording fakes.
pub trait Plumbing: Send + Sync {
    /// Returns the integration bridge's `datapath_type`, or `None` when the bridge is missing.
    fn datapath_type(
        &self,
    ) -> impl std::future::Future<Output = Result<Option<String>, PlumbingError>> + Send;

    /// Returns `eth0`, or the next free `ethN`, inside `netns`.
    fn next_free_ifname(
        &self,
        netns: &Netns,
    ) -> impl std::future::Future<Output = Result<String, PlumbingError>> + Send;

    /// Creates the veth pair, configures the namespace end and adds the host end to the
    /// bridge. Leaves nothing behind when it fails.
    fn plug(
        &self,
        netns: &Netns,
        host_ifname: &str,
        iface: &InterfaceConfig,
        external_ids: &BTreeMap<String, String>,
    ) -> impl std::future::Future<Output = Result<(), PlumbingError>> + Send;

    /// Waits until the OVN controller reports the port's flows installed. Returns `false`
    /// when the timeout passes first or the bridge is not managed by OVN.
    fn wait_flows_installed(
        &self,
        host_ifname: &str,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<bool, PlumbingError>> + Send;

    /// Returns the namespace-side interface name when the host end of the veth pair exists
    /// and sits on the bridge, and its OVS row records `netns`. Returns `None` when the port
    /// is not plugged into `netns`.
    ///
    /// The recorded namespace matters because a restarted container has a new one. The
    /// kernel keeps the old namespace, and the veth in it, while anything references it.
    /// On the lab's Linux 6.18 that lasted from seconds to minutes after some restarts.
    fn plugged_ifname(
        &self,
        host_ifname: &str,
        netns: &Netns,
    ) -> impl std::future::Future<Output = Result<Option<String>, PlumbingError>> + Send;

    /// Removes the OVS port and the veth pair. Each part that is already gone is skipped.
    fn unplug(
        &self,
        host_ifname: &str,
    ) -> impl std::future::Future<Output = Result<Unplugged, PlumbingError>> + Send;
}

/// What [`Plumbing::unplug`] found and removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unplugged {
    pub ovs_port: bool,
    pub link: bool,
}

/// Failure of an attach or detach, one variant per step.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("look up network {network}")]
    FindNetwork {
        network: String,
        #[source]
        source: NeutronError,
    },

    #[error("create port on network {network} for {device}")]
    CreatePort {
        network: String,
        device: String,
        #[source]
        source: NeutronError,
    },

    #[error("list the Clampify ports of {device} on this host")]
    ListPorts {
        device: String,
        #[source]
        source: NeutronError,
    },

    #[error("give spare port {port} to {device}")]
    ClaimSpare {
        port: String,
        device: String,
        #[source]
        source: NeutronError,
    },

    #[error("bind port {port} to host {host}")]
    BindPort {
        port: String,
        host: String,
        #[source]
        source: NeutronError,
    },

    #[error("port {port} on host {host} has binding:vif_type {vif_type}: Neutron found no OVS agent or OVN chassis named {host}; check that --host matches the chassis name (ovn-sbctl show) or the OVS agent's host")]
    BindingFailed {
        port: String,
        host: String,
        vif_type: String,
    },

    #[error("port {port} has binding:vif_type {vif_type}, which is not supported; Clampify plugs only vif_type ovs")]
    UnsupportedVifType { port: String, vif_type: String },

    #[error("read the datapath type of the integration bridge")]
    Bridge(#[source] Box<PlumbingError>),

    #[error("integration bridge {bridge} does not exist; start ovn-controller or the OVS agent, or pass --bridge")]
    BridgeMissing { bridge: String },

    #[error("prepare the interface")]
    PortData(#[source] PortDataError),

    #[error("plug port {port} into network namespace {netns}")]
    Plug {
        port: String,
        netns: String,
        #[source]
        source: Box<PlumbingError>,
    },

    #[error("wait for port {port} to become ACTIVE")]
    WaitActive {
        port: String,
        #[source]
        source: NeutronError,
    },

    #[error("unplug port {port}")]
    Unplug {
        port: String,
        #[source]
        source: Box<PlumbingError>,
    },

    #[error("delete port {port}")]
    DeletePort {
        port: String,
        #[source]
        source: NeutronError,
    },
}

/// Source of the port of an attachment.
#[derive(Debug, Clone)]
pub enum PortSource {
    /// Create a port with these fixed IPs and security groups (names or IDs). Without IPs
    /// Neutron picks them, and without groups the port gets the project's default group.
    /// Without a description the port gets one that records whether the caller made the
    /// namespace.
    Create {
        ips: Vec<IpAddr>,
        security_groups: Vec<String>,
        description: Option<String>,
    },
    /// Bind this existing unbound port to the host and take it over; it is kept on detach.
    Adopt { port: String },
    /// Plug this port, already bound to the host by Clampify, again.
    Replug(Box<Port>),
}

/// The fields of a port that Clampify creates for a device.
#[derive(Debug, Clone, Copy)]
struct NewPort<'a> {
    /// Neutron `device_id`.
    device_id: &'a str,
    /// Neutron port name.
    name: &'a str,
    /// Fixed IPs; without them Neutron picks.
    ips: &'a [IpAddr],
    /// Security group names or IDs; without them the project's default group applies.
    security_groups: &'a [String],
    description: &'a str,
}

/// One attach: which network, into which namespace, for which device.
#[derive(Debug, Clone)]
pub struct AttachRequest {
    /// Network name or UUID.
    pub network: String,
    pub netns: Netns,
    /// Neutron `device_id`: the container ID, or `netns:<name>` for a plain namespace.
    pub device_id: String,
    /// Neutron port name.
    pub port_name: String,
    pub source: PortSource,
    /// How long to wait for ACTIVE; `None` returns once the port is plugged.
    pub wait: Option<Duration>,
    /// Whether the caller made the namespace for this attach; recorded on the port and the
    /// OVS row so that a later delete removes the namespace too.
    pub netns_created: bool,
}

/// The result of an attach, as `clampify create --json` prints it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Attachment {
    pub port_id: String,
    pub network_id: String,
    pub mac_address: String,
    pub ip_addresses: Vec<String>,
    pub interface: String,
    pub netns: String,
    pub status: String,
    /// DNS servers of the port's subnets, for the namespace's resolv.conf.
    #[serde(skip)]
    pub dns_nameservers: Vec<IpAddr>,
}

/// A network with its subnets, as the attach workflow needs it.
#[derive(Debug, Clone)]
pub struct NetworkInfo {
    pub network: Network,
    pub subnets: Vec<Subnet>,
}

/// Interval between the batched port status polls of [`StatusPoller`].
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Timeouts of the attach workflow.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// How long to wait for the OVN controller before polling Neutron anyway.
    pub flows_installed: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            flows_installed: Duration::from_secs(10),
        }
    }
}

/// Attaches namespaces to Neutron networks and detaches them; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Attacher<P> {
    neutron: Neutron,
    plumbing: P,
    host: String,
    bridge: String,
    timeouts: Timeouts,
    networks: Mutex<HashMap<String, Arc<NetworkInfo>>>,
    ports: PortCache,
    statuses: StatusPoller,
    /// Ports created for containers that had not started yet, until their first plug.
    prepared: std::sync::Mutex<HashSet<String>>,
}

impl<P: Plumbing> Attacher<P> {
    pub fn new(neutron: Neutron, plumbing: P, host: String, bridge: String) -> Self {
        Self {
            plumbing,
            host,
            bridge,
            timeouts: Timeouts::default(),
            networks: Mutex::new(HashMap::new()),
            ports: PortCache::default(),
            statuses: StatusPoller::new(neutron.clone(), POLL_INTERVAL),
            prepared: std::sync::Mutex::new(HashSet::new()),
            neutron,
        }
    }

    /// Returns the cache of ports per container, which the agent seeds at each reconcile.
    pub fn port_cache(&self) -> &PortCache {
        &self.ports
    }

    pub fn neutron(&self) -> &Neutron {
        &self.neutron
    }

    pub fn plumbing(&self) -> &P {
        &self.plumbing
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Looks up a network and its subnets by name or UUID, once per attacher.
    pub async fn network(&self, name_or_id: &str) -> Result<Arc<NetworkInfo>, AttachError> {
        if let Some(info) = self.networks.lock().await.get(name_or_id) {
            return Ok(info.clone());
        }
        let find_error = |source| AttachError::FindNetwork {
            network: name_or_id.to_string(),
            source,
        };
        let network = self
            .neutron
            .find_network(name_or_id)
            .await
            .map_err(find_error)?;
        let subnets = self
            .neutron
            .subnets_of(&network.id)
            .await
            .map_err(find_error)?;
        let info = Arc::new(NetworkInfo { network, subnets });

        let mut cache = self.networks.lock().await;
        cache.insert(name_or_id.to_string(), info.clone());
        cache.insert(info.network.id.clone(), info.clone());
        Ok(info)
    }

    /// Connects `request.netns` to the network and returns what was made.
    ///
    /// On failure nothing this call made is left behind: a created port is deleted, an
    /// adopted one is unbound, and the veth pair and OVS port are removed.
    #[tracing::instrument(name = "attach", skip_all, fields(network = %request.network, device = %request.device_id, port = tracing::field::Empty))]
    pub async fn attach(&self, request: &AttachRequest) -> Result<Attachment, AttachError> {
        let started = Instant::now();

        // 1. Network, subnets and the bridge's datapath: the port and interface depend on them.
        let info = self.network(&request.network).await?;
        let netdev = self.bridge_is_netdev().await?;

        // 2. Neutron allocates the MAC and fixed IPs; the local side is built to match.
        let port = self.obtain_port(request, &info).await?;
        tracing::Span::current().record("port", tracing::field::display(&port.id));
        if let Err(err) = check_vif_type(&port, &self.host) {
            self.release_port(request, &port).await;
            return Err(err);
        }

        // 3. Build the veth pair and OVS port; undo the port if that fails.
        let ifname = match self.plug(request, &port, &info, netdev).await {
            Ok(ifname) => ifname,
            Err(err) => {
                self.release_port(request, &port).await;
                return Err(err);
            }
        };

        // 4. The port turns ACTIVE once OVN (or the OVS agent) has wired its flows.
        let status = match self.wait_active(request, &port).await {
            Ok(status) => status,
            Err(err) => {
                self.unplug_quietly(&port.id).await;
                self.release_port(request, &port).await;
                return Err(err);
            }
        };

        self.ports.insert(&port);
        let attachment = attachment(&port, &info, ifname, &request.netns, status);
        tracing::debug!(
            netns = %request.netns,
            ifname = %attachment.interface,
            mac = %attachment.mac_address,
            ips = ?attachment.ip_addresses,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "port attached"
        );
        Ok(attachment)
    }

    async fn bridge_is_netdev(&self) -> Result<bool, AttachError> {
        match self
            .plumbing
            .datapath_type()
            .await
            .map_err(|err| AttachError::Bridge(Box::new(err)))?
        {
            Some(datapath) => Ok(datapath == "netdev"),
            None => Err(AttachError::BridgeMissing {
                bridge: self.bridge.clone(),
            }),
        }
    }

    async fn obtain_port(
        &self,
        request: &AttachRequest,
        info: &NetworkInfo,
    ) -> Result<Port, AttachError> {
        match &request.source {
            PortSource::Create {
                ips,
                security_groups,
                description,
            } => {
                let description = match description {
                    Some(description) => description,
                    None if request.netns_created => DESCRIPTION_NETNS_CREATED,
                    None => DESCRIPTION_CREATED,
                };
                let new_port = NewPort {
                    device_id: &request.device_id,
                    name: &request.port_name,
                    ips,
                    security_groups,
                    description,
                };
                self.create_port(&request.network, info, &new_port).await
            }
            PortSource::Adopt { port } => self.adopt_port(request, port).await,
            PortSource::Replug(port) => Ok((**port).clone()),
        }
    }

    /// Creates a port on `info`'s network, bound to this host. `network` is the network as
    /// the caller named it, for the error message.
    async fn create_port(
        &self,
        network: &str,
        info: &NetworkInfo,
        new_port: &NewPort<'_>,
    ) -> Result<Port, AttachError> {
        let create_error = |source| AttachError::CreatePort {
            network: network.to_owned(),
            device: new_port.device_id.to_owned(),
            source,
        };
        // The port belongs to the network's project, so it gets that tenant's default
        // security group and quota, even when an admin or service user creates it.
        let project_id = (!info.network.shared)
            .then(|| info.network.project_id.clone())
            .flatten();
        let mut group_ids = Vec::new();
        for group in new_port.security_groups {
            let found = self
                .neutron
                .find_security_group(group, project_id.as_deref())
                .await
                .map_err(create_error)?;
            group_ids.push(found.id);
        }
        let create = PortCreate {
            network_id: info.network.id.clone(),
            name: new_port.name.to_owned(),
            host_id: self.host.clone(),
            device_owner: DEVICE_OWNER.to_string(),
            device_id: new_port.device_id.to_owned(),
            fixed_ips: fixed_ips_for(new_port.ips, &info.subnets),
            security_groups: (!group_ids.is_empty()).then_some(group_ids),
            mac_address: None,
            tags: vec![TAG.to_string()],
            description: Some(new_port.description.to_string()),
            project_id,
        };
        self.neutron
            .create_port(&create)
            .await
            .map_err(create_error)
    }

    async fn adopt_port(
        &self,
        request: &AttachRequest,
        port_id: &str,
    ) -> Result<Port, AttachError> {
        let bind_error = |source| AttachError::BindPort {
            port: port_id.to_string(),
            host: self.host.clone(),
            source,
        };
        let binding = PortBinding {
            host_id: self.host.clone(),
            device_owner: DEVICE_OWNER.to_string(),
            device_id: request.device_id.clone(),
        };
        self.neutron
            .update_port(port_id, &binding.attributes())
            .await
            .map_err(bind_error)
    }

    async fn plug(
        &self,
        request: &AttachRequest,
        port: &Port,
        info: &NetworkInfo,
        netdev: bool,
    ) -> Result<String, AttachError> {
        let plug_error = |source| AttachError::Plug {
            port: port.id.clone(),
            netns: request.netns.to_string(),
            source: Box::new(source),
        };
        let ifname = self
            .plumbing
            .next_free_ifname(&request.netns)
            .await
            .map_err(plug_error)?;
        let mtu = info.network.mtu.unwrap_or(1500);
        // Userspace OVS reads veths through AF_PACKET without vnet headers, so a packet
        // with a partial checksum leaves with a bad one: ping works and TCP does not.
        // The first interface carries the default routes. A later one (a second network, or
        // a container that already has Docker's eth0) adds only its subnet and host routes,
        // as Docker does for a container's second network.
        let default_routes = ifname == FIRST_IFNAME;
        let iface = interface_config(port, &info.subnets, &ifname, mtu, netdev, default_routes)
            .map_err(AttachError::PortData)?;

        let external_ids = ovs_external_ids(port, request, &ifname);
        self.plumbing
            .plug(
                &request.netns,
                &host_ifname(&port.id),
                &iface,
                &external_ids,
            )
            .await
            .map_err(plug_error)?;
        Ok(ifname)
    }

    async fn wait_active(
        &self,
        request: &AttachRequest,
        port: &Port,
    ) -> Result<String, AttachError> {
        let Some(timeout) = request.wait else {
            return Ok(port.status.clone());
        };
        let wait_error = |source| AttachError::WaitActive {
            port: port.id.clone(),
            source,
        };

        // The OVN controller marks the OVS row when the flows are in, a moment before
        // Neutron learns it: watching the local row first saves polling Neutron.
        let started = Instant::now();
        let local_wait = timeout.min(self.timeouts.flows_installed);
        let _ = self
            .plumbing
            .wait_flows_installed(&host_ifname(&port.id), local_wait)
            .await;
        let left = timeout.saturating_sub(started.elapsed());
        self.statuses
            .wait_active(&port.id, left)
            .await
            .map_err(wait_error)?;
        Ok("ACTIVE".to_string())
    }

    /// Undoes the Neutron side of a failed attach: deletes a created port, unbinds an
    /// adopted one and leaves a replugged one alone. Errors are logged, not returned,
    /// because the caller is already returning the error that caused the rollback.
    async fn release_port(&self, request: &AttachRequest, port: &Port) {
        let result = match &request.source {
            PortSource::Create { .. } => self.neutron.delete_port(&port.id).await.map(|_| ()),
            PortSource::Adopt { .. } => self.unbind_port(&port.id).await,
            PortSource::Replug(_) => Ok(()),
        };
        if let Err(err) = result {
            tracing::warn!(port = %port.id, error = %err, "rollback of port failed; delete it by hand");
        }
    }

    async fn unplug_quietly(&self, port_id: &str) {
        if let Err(err) = self.plumbing.unplug(&host_ifname(port_id)).await {
            tracing::warn!(port = %port_id, error = %err, "rollback of local interfaces failed");
        }
    }

    /// Clears the binding and device fields that adoption set, so the port can be used again.
    pub async fn unbind_port(&self, port_id: &str) -> Result<(), NeutronError> {
        self.neutron
            .update_port(port_id, &PortBinding::cleared())
            .await
            .map(|_| ())
    }

    /// Removes the local side of a port and then deletes or unbinds the port in Neutron.
    ///
    /// The local side goes first, so a crash midway leaves a port that reconcile can
    /// still find by its `device_id`. Returns whether the port existed.
    pub async fn detach(&self, port: &Port) -> Result<Unplugged, AttachError> {
        let unplugged = self
            .plumbing
            .unplug(&host_ifname(&port.id))
            .await
            .map_err(|source| AttachError::Unplug {
                port: port.id.clone(),
                source: Box::new(source),
            })?;
        let delete_error = |source| AttachError::DeletePort {
            port: port.id.clone(),
            source,
        };
        if created_by_clampify(port) {
            self.neutron
                .delete_port(&port.id)
                .await
                .map_err(delete_error)?;
        } else {
            self.unbind_port(&port.id).await.map_err(delete_error)?;
        }
        self.ports.remove(port);
        self.take_prepared(&port.id);
        Ok(unplugged)
    }
}

/// Rejects a port that Neutron could not bind, or bound with a VIF type Clampify cannot plug.
fn check_vif_type(port: &Port, host: &str) -> Result<(), AttachError> {
    let vif_type = port
        .binding_vif_type
        .clone()
        .unwrap_or_else(|| "unbound".to_string());
    match vif_type.as_str() {
        "ovs" => Ok(()),
        "binding_failed" | "unbound" => Err(AttachError::BindingFailed {
            port: port.id.clone(),
            host: host.to_string(),
            vif_type,
        }),
        _ => Err(AttachError::UnsupportedVifType {
            port: port.id.clone(),
            vif_type,
        }),
    }
}

/// The name of a namespace under `/run/netns` (as `ip netns` shows it), else its path.
pub fn netns_label(netns: &Netns) -> String {
    match netns.path().strip_prefix("/run/netns") {
        Ok(name) => name.display().to_string(),
        Err(_) => netns.path().display().to_string(),
    }
}

/// Returns whether Clampify created the port, rather than adopting it with `create --port`.
pub fn created_by_clampify(port: &Port) -> bool {
    port.description.starts_with(DESCRIPTION_CREATED)
}

/// Returns whether `clampify create` made the port's namespace.
pub fn netns_created_with(port: &Port) -> bool {
    port.description == DESCRIPTION_NETNS_CREATED
}

/// Pairs each requested address with the subnet that contains it; an address outside every
/// subnet is sent without a subnet, so Neutron rejects it with its own message.
fn fixed_ips_for(ips: &[IpAddr], subnets: &[Subnet]) -> Vec<FixedIpRequest> {
    ips.iter()
        .map(|ip| FixedIpRequest {
            subnet_id: crate::openstack::find_subnet_for_ip(subnets, *ip).map(|s| s.id.clone()),
            ip_address: Some(*ip),
        })
        .collect()
}

/// The Interface `external_ids` that OVN and the OVS agent read, as Nova's os-vif sets them,
/// plus Clampify's own keys for `list` and `delete`.
fn ovs_external_ids(
    port: &Port,
    request: &AttachRequest,
    ifname: &str,
) -> BTreeMap<String, String> {
    let mut ids = BTreeMap::new();
    ids.insert("iface-id".to_string(), port.id.clone());
    ids.insert("iface-status".to_string(), "active".to_string());
    ids.insert("attached-mac".to_string(), port.mac_address.clone());
    ids.insert("vm-uuid".to_string(), request.device_id.clone());
    ids.insert(OVS_KEY_IFNAME.to_string(), ifname.to_string());
    ids.insert(OVS_KEY_NETNS.to_string(), netns_label(&request.netns));
    if request.netns_created {
        ids.insert(OVS_KEY_NETNS_CREATED.to_string(), "true".to_string());
    }
    ids
}

fn attachment(
    port: &Port,
    info: &NetworkInfo,
    ifname: String,
    netns: &Netns,
    status: String,
) -> Attachment {
    let subnet_ids: Vec<&str> = port
        .fixed_ips
        .iter()
        .map(|f| f.subnet_id.as_str())
        .collect();
    let mut dns_nameservers = Vec::new();
    for subnet in info
        .subnets
        .iter()
        .filter(|s| subnet_ids.contains(&s.id.as_str()))
    {
        for server in &subnet.dns_nameservers {
            if !dns_nameservers.contains(server) {
                dns_nameservers.push(*server);
            }
        }
    }
    Attachment {
        port_id: port.id.clone(),
        network_id: port.network_id.clone(),
        mac_address: port.mac_address.clone(),
        ip_addresses: port
            .fixed_ips
            .iter()
            .map(|f| f.ip_address.to_string())
            .collect(),
        interface: ifname,
        netns: netns_label(netns),
        status,
        dns_nameservers,
    }
}
