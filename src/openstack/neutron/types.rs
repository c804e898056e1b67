//! Neutron resources as the v2.0 API returns them, and the bodies Clampify sends.
//!
//! Fields Neutron may leave out (the `binding:*` ones for users without the admin or service
//! role, for example) are `Option` or default to empty.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A Neutron network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// `None` when the `net-mtu` extension is off; the geneve networks of ML2/OVN have 1442.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Subnet IDs.
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub shared: bool,
    #[serde(default)]
    pub port_security_enabled: Option<bool>,
    #[serde(rename = "provider:network_type", default)]
    pub network_type: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A Neutron subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub network_id: String,
    pub cidr: IpNet,
    #[serde(default)]
    pub gateway_ip: Option<IpAddr>,
    #[serde(default)]
    pub host_routes: Vec<HostRoute>,
    #[serde(default)]
    pub dns_nameservers: Vec<IpAddr>,
    pub ip_version: u8,
    #[serde(default)]
    pub enable_dhcp: bool,
}

/// A static route Neutron hands out with a subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoute {
    pub destination: IpNet,
    pub nexthop: IpAddr,
}

/// A security group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub project_id: Option<String>,
}

/// A Neutron port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub network_id: String,
    pub mac_address: String,
    #[serde(default)]
    pub fixed_ips: Vec<FixedIp>,
    /// `DOWN` until the host's agent (or ovn-controller) has wired the port, then `ACTIVE`.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub device_id: String,
    #[serde(default)]
    pub device_owner: String,
    /// The host the port is bound to; empty or missing when unbound.
    #[serde(rename = "binding:host_id", default)]
    pub binding_host_id: Option<String>,
    /// `ovs` once bound to a host with an OVS agent or OVN chassis, `binding_failed` when the
    /// host has none, `unbound` without a host.
    #[serde(rename = "binding:vif_type", default)]
    pub binding_vif_type: Option<String>,
    /// Driver details of the binding, such as `bridge_name` and `datapath_type`.
    #[serde(rename = "binding:vif_details", default)]
    pub binding_vif_details: Value,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub description: String,
}

/// An address Neutron assigned to a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: IpAddr,
}

/// The body of a port creation, sent in one `POST /v2.0/ports`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PortCreate {
    pub network_id: String,
    pub name: String,
    /// `binding:host_id`: the OVS agent's host name or the OVN chassis name of this host.
    /// Setting it needs the admin or service role.
    #[serde(rename = "binding:host_id")]
    pub host_id: String,
    /// For example `compute:clampify`. Neutron treats owners starting with `compute:` as
    /// instance ports.
    pub device_owner: String,
    /// The container or namespace the port is for.
    pub device_id: String,
    /// Requested addresses; empty lets Neutron pick one per subnet.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fixed_ips: Vec<FixedIpRequest>,
    /// `None` gives the project's default group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    /// `None` lets Neutron allocate a MAC address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// NOTE: Neutron applies tags sent in the POST body only when the ML2 extension driver
    /// `tag_ports_during_bulk_creation` is enabled. Without it, Neutron 29.0.0 accepts them
    /// and drops them silently, so mark Clampify's ports with `description` or
    /// `device_owner` rather than rely on tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Free text, always stored; a filter of [`PortFilters`] too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Owner of the port; `None` gives the token's project. Only an admin or service user
    /// may create a port for another project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
}

/// A requested address: a subnet, an IP, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FixedIpRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<IpAddr>,
}

/// The binding attributes of a port, for [`Neutron::update_port`](super::Neutron::update_port).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortBinding {
    pub host_id: String,
    pub device_owner: String,
    pub device_id: String,
}

impl PortBinding {
    /// Returns the update body that binds a port to this host and owner, to adopt a port.
    pub fn attributes(&self) -> Value {
        json!({
            "binding:host_id": self.host_id,
            "device_owner": self.device_owner,
            "device_id": self.device_id,
        })
    }

    /// Returns the update body that unbinds a port and clears its owner, used to release a port
    /// that Clampify adopted and must not delete.
    pub fn cleared() -> Value {
        json!({ "binding:host_id": "", "device_owner": "", "device_id": "" })
    }
}

/// The two fields of a port that a status poll requests.
#[derive(Debug, Deserialize)]
pub(super) struct PortStatus {
    pub id: String,
    #[serde(default)]
    pub status: String,
}

/// Filters of `list_ports`. A port must match every field that is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortFilters {
    /// Any of these IDs; empty means any port.
    pub ids: Vec<String>,
    pub network_id: Option<String>,
    pub device_id: Option<String>,
    pub device_owner: Option<String>,
    /// `binding:host_id`.
    pub host_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Ports that carry all of these tags.
    pub tags: Vec<String>,
}

impl PortFilters {
    /// Returns the query string pairs. An ID list becomes repeated `id=` pairs, which Neutron
    /// combines with OR.
    pub(super) fn query(&self) -> Vec<(&str, String)> {
        let mut query: Vec<(&str, String)> = self.ids.iter().map(|id| ("id", id.clone())).collect();
        let single = [
            ("network_id", &self.network_id),
            ("device_id", &self.device_id),
            ("device_owner", &self.device_owner),
            ("binding:host_id", &self.host_id),
            ("name", &self.name),
            ("description", &self.description),
        ];
        for (key, value) in single {
            if let Some(value) = value {
                query.push((key, value.clone()));
            }
        }
        if !self.tags.is_empty() {
            query.push(("tags", self.tags.join(",")));
        }
        query
    }
}

#[derive(Deserialize)]
pub(super) struct NetworkBody {
    pub network: Network,
}

#[derive(Deserialize)]
pub(super) struct NetworksBody {
    pub networks: Vec<Network>,
}

#[derive(Deserialize)]
pub(super) struct SubnetsBody {
    pub subnets: Vec<Subnet>,
}

#[derive(Deserialize)]
pub(super) struct SecurityGroupBody {
    pub security_group: SecurityGroup,
}

#[derive(Deserialize)]
pub(super) struct SecurityGroupsBody {
    pub security_groups: Vec<SecurityGroup>,
}

#[derive(Deserialize)]
pub(super) struct PortBody {
    pub port: Port,
}

#[derive(Deserialize)]
pub(super) struct PortsBody {
    pub ports: Vec<Port>,
}

#[derive(Deserialize)]
pub(super) struct PortStatusesBody {
    pub ports: Vec<PortStatus>,
}
