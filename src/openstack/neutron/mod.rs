//! The Neutron v2.0 calls Clampify makes: look up networks, subnets and security groups, and
//! create, adopt, poll and delete ports.

mod types;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::http::RequestError;
use super::session::Session;
pub use types::{
    FixedIp, FixedIpRequest, HostRoute, Network, Port, PortBinding, PortCreate, PortFilters,
    SecurityGroup, Subnet,
};
use types::{
    NetworkBody, NetworksBody, PortBody, PortStatusesBody, PortsBody, SecurityGroupBody,
    SecurityGroupsBody, SubnetsBody,
};

/// How many port IDs one status poll puts in its query string. Neutron 29 is served by uWSGI,
/// whose default `buffer-size` of 4096 bytes caps the request line plus headers (the token
/// alone is about 200 bytes); 40 IDs make a query of about 1.6 KB.
const IDS_PER_QUERY: usize = 40;

/// Failures of Neutron calls. Each variant names the operation and the IDs involved; the
/// HTTP cause, when there is one, is the `source`.
#[derive(Debug, thiserror::Error)]
pub enum NeutronError {
    #[error("network {network} not found")]
    NetworkNotFound { network: String },

    #[error("network name {network} matches {} networks: {}; pass one of these IDs instead", ids.len(), ids.join(", "))]
    AmbiguousNetwork { network: String, ids: Vec<String> },

    #[error("find network {network}")]
    FindNetwork {
        network: String,
        #[source]
        source: RequestError,
    },

    #[error("list subnets of network {network}")]
    ListSubnets {
        network: String,
        #[source]
        source: RequestError,
    },

    #[error("security group {group} not found")]
    SecurityGroupNotFound { group: String },

    #[error("security group name {group} matches {} groups: {}; pass one of these IDs instead", ids.len(), ids.join(", "))]
    AmbiguousSecurityGroup { group: String, ids: Vec<String> },

    #[error("find security group {group}")]
    FindSecurityGroup {
        group: String,
        #[source]
        source: RequestError,
    },

    #[error("create port on network {network}")]
    CreatePort {
        network: String,
        #[source]
        source: RequestError,
    },

    #[error("port {port} not found")]
    PortNotFound { port: String },

    #[error("show port {port}")]
    ShowPort {
        port: String,
        #[source]
        source: RequestError,
    },

    #[error("list ports")]
    ListPorts {
        #[source]
        source: RequestError,
    },

    #[error("update port {port}")]
    UpdatePort {
        port: String,
        #[source]
        source: RequestError,
    },

    #[error("delete port {port}")]
    DeletePort {
        port: String,
        #[source]
        source: RequestError,
    },

    #[error("read the status of {count} ports")]
    PortStatuses {
        count: usize,
        #[source]
        source: RequestError,
    },

    #[error("port {port} is still {status} after {:.1} s", waited.as_secs_f64())]
    NotActive {
        port: String,
        status: String,
        waited: Duration,
    },

    #[error("port {port} failed to bind to host {host} (binding:vif_type is binding_failed); the host must be the name of an OVN chassis or OVS agent host")]
    BindingFailed { port: String, host: String },
}

impl NeutronError {
    /// Tells whether the network, security group or port does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::NetworkNotFound { .. }
            | Self::SecurityGroupNotFound { .. }
            | Self::PortNotFound { .. } => true,
            other => other
                .request_error()
                .is_some_and(RequestError::is_not_found),
        }
    }

    /// Tells whether Neutron replied 409 Conflict, as it does for an IP or MAC in use.
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(StatusCode::CONFLICT)
    }

    /// Returns the HTTP status Neutron replied with, when the failure was an error reply.
    pub fn status(&self) -> Option<StatusCode> {
        self.request_error().and_then(RequestError::status)
    }

    /// Returns the failed request behind this error, if there was one.
    /// Tells whether the call may succeed later (see [`RequestError::is_transient`]).
    pub fn is_transient(&self) -> bool {
        self.request_error().is_some_and(RequestError::is_transient)
    }

    pub fn request_error(&self) -> Option<&RequestError> {
        match self {
            Self::FindNetwork { source, .. }
            | Self::ListSubnets { source, .. }
            | Self::FindSecurityGroup { source, .. }
            | Self::CreatePort { source, .. }
            | Self::ShowPort { source, .. }
            | Self::ListPorts { source }
            | Self::UpdatePort { source, .. }
            | Self::DeletePort { source, .. }
            | Self::PortStatuses { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Neutron calls over a [`Session`]. Cheap to clone; clones share the session.
#[derive(Debug, Clone)]
pub struct Neutron {
    session: Session,
}

impl Neutron {
    pub fn new(session: Session) -> Self {
        Self { session }
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Finds a network by ID (one `GET /v2.0/networks/{id}`) or else by exact name (one
    /// `GET /v2.0/networks?name=`). A name that matches several networks is an error that
    /// lists their IDs.
    pub async fn find_network(&self, name_or_id: &str) -> Result<Network, NeutronError> {
        let network = name_or_id.to_owned();
        if is_uuid(name_or_id) {
            let path = ["v2.0", "networks", name_or_id];
            return match self
                .call::<NetworkBody, ()>(Method::GET, &path, &[], None)
                .await
            {
                Ok(body) => Ok(body.network),
                Err(error) if is_missing_resource(&error) => {
                    Err(NeutronError::NetworkNotFound { network })
                }
                Err(source) => Err(NeutronError::FindNetwork { network, source }),
            };
        }

        let query = [("name", network.clone())];
        let found = self.call::<NetworksBody, ()>(Method::GET, &["v2.0", "networks"], &query, None);
        let networks = match found.await {
            Ok(body) => body.networks,
            Err(source) => return Err(NeutronError::FindNetwork { network, source }),
        };
        match only_one(networks, |network| &network.id) {
            Ok(found) => Ok(found),
            Err(ids) if ids.is_empty() => Err(NeutronError::NetworkNotFound { network }),
            Err(ids) => Err(NeutronError::AmbiguousNetwork { network, ids }),
        }
    }

    /// Lists the subnets of a network in one `GET /v2.0/subnets?network_id=`.
    pub async fn subnets_of(&self, network_id: &str) -> Result<Vec<Subnet>, NeutronError> {
        let query = [("network_id", network_id.to_owned())];
        let listed = self.call::<SubnetsBody, ()>(Method::GET, &["v2.0", "subnets"], &query, None);
        match listed.await {
            Ok(body) => Ok(body.subnets),
            Err(source) => Err(NeutronError::ListSubnets {
                network: network_id.to_owned(),
                source,
            }),
        }
    }

    /// Finds a security group by ID or else by exact name.
    ///
    /// Every project has a group named `default`, and an admin or service user sees them
    /// all. When a name matches several groups, the one in `project_id` (or, when that is
    /// `None`, in the token's project) is returned if there is exactly one. Otherwise the
    /// error lists their IDs.
    pub async fn find_security_group(
        &self,
        name_or_id: &str,
        project_id: Option<&str>,
    ) -> Result<SecurityGroup, NeutronError> {
        let group = name_or_id.to_owned();
        if is_uuid(name_or_id) {
            let path = ["v2.0", "security-groups", name_or_id];
            return match self
                .call::<SecurityGroupBody, ()>(Method::GET, &path, &[], None)
                .await
            {
                Ok(body) => Ok(body.security_group),
                Err(error) if is_missing_resource(&error) => {
                    Err(NeutronError::SecurityGroupNotFound { group })
                }
                Err(source) => Err(NeutronError::FindSecurityGroup { group, source }),
            };
        }

        let groups = match self.security_groups_named(name_or_id, project_id).await {
            Ok(groups) => groups,
            Err(source) => return Err(NeutronError::FindSecurityGroup { group, source }),
        };
        match only_one(groups, |group| &group.id) {
            Ok(found) => Ok(found),
            Err(ids) if ids.is_empty() => Err(NeutronError::SecurityGroupNotFound { group }),
            Err(ids) => Err(NeutronError::AmbiguousSecurityGroup { group, ids }),
        }
    }

    /// Lists the groups named `name`, narrowed to `project_id` (default: the token's project)
    /// when that leaves one.
    async fn security_groups_named(
        &self,
        name: &str,
        project_id: Option<&str>,
    ) -> Result<Vec<SecurityGroup>, RequestError> {
        let query = [("name", name.to_owned())];
        let path = ["v2.0", "security-groups"];
        let groups = self
            .call::<SecurityGroupsBody, ()>(Method::GET, &path, &query, None)
            .await?;
        let groups = groups.security_groups;
        if groups.len() < 2 {
            return Ok(groups);
        }

        let project = match project_id {
            Some(project) => Some(project.to_owned()),
            None => self.session.project_id().await?,
        };
        let own: Vec<SecurityGroup> = groups
            .iter()
            .filter(|group| project.is_some() && group.project_id == project)
            .cloned()
            .collect();
        Ok(if own.len() == 1 { own } else { groups })
    }

    /// Creates a port in one `POST /v2.0/ports`, bound to `request.host_id`.
    pub async fn create_port(&self, request: &PortCreate) -> Result<Port, NeutronError> {
        let body = PortCreateBody { port: request };
        let created = self.call::<PortBody, _>(Method::POST, &["v2.0", "ports"], &[], Some(&body));
        let port = match created.await {
            Ok(body) => body.port,
            Err(source) => {
                let network = request.network_id.clone();
                return Err(NeutronError::CreatePort { network, source });
            }
        };
        tracing::debug!(
            port = %port.id,
            network = %port.network_id,
            host = %request.host_id,
            mac = %port.mac_address,
            "port created"
        );
        Ok(port)
    }

    /// Reads one port; a port Neutron does not know is [`NeutronError::PortNotFound`].
    pub async fn show_port(&self, port_id: &str) -> Result<Port, NeutronError> {
        let port = port_id.to_owned();
        let path = ["v2.0", "ports", port_id];
        match self
            .call::<PortBody, ()>(Method::GET, &path, &[], None)
            .await
        {
            Ok(body) => Ok(body.port),
            Err(error) if is_missing_resource(&error) => Err(NeutronError::PortNotFound { port }),
            Err(source) => Err(NeutronError::ShowPort { port, source }),
        }
    }

    /// Lists the ports that match every filter that is set, in one request.
    pub async fn list_ports(&self, filters: &PortFilters) -> Result<Vec<Port>, NeutronError> {
        let query = filters.query();
        let listed = self.call::<PortsBody, ()>(Method::GET, &["v2.0", "ports"], &query, None);
        match listed.await {
            Ok(body) => Ok(body.ports),
            Err(source) => Err(NeutronError::ListPorts { source }),
        }
    }

    /// Changes port attributes with one `PUT /v2.0/ports/{id}`. `attributes` is the inner
    /// object, such as [`PortBinding::attributes`]; this method wraps it in `{"port": …}`.
    pub async fn update_port(
        &self,
        port_id: &str,
        attributes: &Value,
    ) -> Result<Port, NeutronError> {
        let port = port_id.to_owned();
        let path = ["v2.0", "ports", port_id];
        let body = serde_json::json!({ "port": attributes });
        match self
            .call::<PortBody, _>(Method::PUT, &path, &[], Some(&body))
            .await
        {
            Ok(body) => Ok(body.port),
            Err(error) if is_missing_resource(&error) => Err(NeutronError::PortNotFound { port }),
            Err(source) => Err(NeutronError::UpdatePort { port, source }),
        }
    }

    /// Deletes a port. Returns `false` when Neutron no longer had it, so that cleanup can be
    /// repeated safely.
    pub async fn delete_port(&self, port_id: &str) -> Result<bool, NeutronError> {
        let path = ["v2.0", "ports", port_id];
        let sent = self
            .session
            .network_request::<()>(Method::DELETE, &path, &[], None)
            .await;
        let checked = sent.and_then(|reply| reply.error_for_status());
        match checked {
            Ok(_) => {
                tracing::debug!(port = %port_id, "port deleted");
                Ok(true)
            }
            Err(error) if is_missing_resource(&error) => Ok(false),
            Err(source) => Err(NeutronError::DeletePort {
                port: port_id.to_owned(),
                source,
            }),
        }
    }

    /// Returns the status (`ACTIVE`, `DOWN`, …) of each port that still exists, by ID.
    ///
    /// Sends one `GET /v2.0/ports?id=…&id=…` per 40 IDs, asking only for `id` and `status`,
    /// so an agent can poll many ports at a time. IDs of deleted ports are absent from the map.
    pub async fn statuses<S: AsRef<str>>(
        &self,
        port_ids: &[S],
    ) -> Result<HashMap<String, String>, NeutronError> {
        let mut statuses = HashMap::with_capacity(port_ids.len());
        for chunk in port_ids.chunks(IDS_PER_QUERY) {
            let mut query: Vec<(&str, String)> = chunk
                .iter()
                .map(|id| ("id", id.as_ref().to_owned()))
                .collect();
            query.extend([("fields", "id".to_owned()), ("fields", "status".to_owned())]);

            let path = ["v2.0", "ports"];
            let listed = self
                .call::<PortStatusesBody, ()>(Method::GET, &path, &query, None)
                .await;
            let body = listed.map_err(|source| NeutronError::PortStatuses {
                count: port_ids.len(),
                source,
            })?;
            statuses.extend(body.ports.into_iter().map(|port| (port.id, port.status)));
        }
        Ok(statuses)
    }

    /// Polls the port every `poll_interval` until it is `ACTIVE`, and returns it.
    ///
    /// Fails at once when the binding failed, because that does not change by itself, and
    /// with [`NeutronError::NotActive`] when `timeout` has passed.
    pub async fn wait_active(
        &self,
        port_id: &str,
        timeout: Duration,
        poll_interval: Duration,
    ) -> Result<Port, NeutronError> {
        let started = tokio::time::Instant::now();
        loop {
            let port = self.show_port(port_id).await?;
            if port.status == "ACTIVE" {
                return Ok(port);
            }
            if port.binding_vif_type.as_deref() == Some("binding_failed") {
                let host = port.binding_host_id.unwrap_or_default();
                return Err(NeutronError::BindingFailed {
                    port: port.id,
                    host,
                });
            }

            let waited = started.elapsed();
            if waited >= timeout {
                let status = port.status;
                return Err(NeutronError::NotActive {
                    port: port.id,
                    status,
                    waited,
                });
            }
            tokio::time::sleep(poll_interval.min(timeout - waited)).await;
        }
    }

    /// Sends a request and decodes a successful reply.
    async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T, RequestError> {
        self.session
            .network_request(method, path, query, body)
            .await?
            .json()
    }
}

#[derive(Serialize)]
struct PortCreateBody<'a> {
    port: &'a PortCreate,
}

/// Returns the subnet whose CIDR contains `ip`, the most specific one if several do.
pub fn find_subnet_for_ip(subnets: &[Subnet], ip: IpAddr) -> Option<&Subnet> {
    subnets
        .iter()
        .filter(|subnet| subnet.cidr.contains(&ip))
        .max_by_key(|subnet| subnet.cidr.prefix_len())
}

/// Tells whether Neutron reported that the resource does not exist.
///
/// A 404 alone is not enough: a wrong endpoint path in the catalog gives 404 for every
/// request, and taking that for "port already gone" would hide the misconfiguration. Neutron
/// 29 names a missing resource in `NeutronError.type` (`PortNotFound`, `NetworkNotFound`,
/// `SecurityGroupNotFound`), but answers an unknown path with `HTTPNotFound` or an HTML page.
fn is_missing_resource(error: &RequestError) -> bool {
    error.is_not_found()
        && error
            .error_type()
            .is_some_and(|kind| kind.ends_with("NotFound") && kind != "HTTPNotFound")
}

/// Returns the only item, or else the IDs of all items (none, or several).
fn only_one<T>(mut items: Vec<T>, id: impl Fn(&T) -> &String) -> Result<T, Vec<String>> {
    if items.len() == 1 {
        if let Some(item) = items.pop() {
            return Ok(item);
        }
    }
    Err(items.iter().map(|item| id(item).clone()).collect())
}

/// Tells whether `text` is a dashed UUID, the form of every Neutron resource ID.
fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => *byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests;
