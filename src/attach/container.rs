//! Attaching a running container: one port per network, kept across restarts.

use std::net::IpAddr;
use std::time::Duration;

use super::{
    attachment, AttachError, AttachRequest, Attacher, Attachment, NewPort, Plumbing, PortSource,
    SparePorts, DESCRIPTION_CREATED, DEVICE_OWNER,
};
use crate::openstack::{Port, PortFilters};
use crate::plumbing::{host_ifname, Netns};

/// A running container, as the attach workflow needs it.
#[derive(Debug, Clone)]
pub struct ContainerTarget {
    /// Full container ID; it becomes the port's `device_id`.
    pub id: String,
    /// Container name, used in the port name.
    pub name: String,
    /// The container's network namespace.
    pub netns: Netns,
    /// Data root of the container's dockerd, recorded in the description of a created
    /// port (see [`dockerd_data_root`]); `None` records nothing.
    pub data_root: Option<String>,
}

/// A container that may not run yet: what a port created for it records.
#[derive(Debug, Clone, Copy)]
pub struct ContainerRef<'a> {
    /// Full container ID; it becomes the port's `device_id`.
    pub id: &'a str,
    /// Container name, used in the port name.
    pub name: &'a str,
    /// Data root of the container's dockerd (see [`ContainerTarget::data_root`]).
    pub data_root: Option<&'a str>,
}

/// A port made for a container before it started.
#[derive(Debug, Clone)]
pub struct PreparedPort {
    pub port: Port,
    /// Whether the port was a spare port, rather than created for the container.
    pub from_spare: bool,
}

/// Returns the Neutron name of a container's port.
pub(super) fn port_name(container_name: &str) -> String {
    format!("clampify-{container_name}")
}

/// Returns the description of a port created for a container, with its dockerd's data
/// root when known.
pub(super) fn container_description(data_root: Option<&str>) -> String {
    match data_root {
        Some(data_root) => container_port_description(data_root),
        None => DESCRIPTION_CREATED.to_owned(),
    }
}

/// Text between [`DESCRIPTION_CREATED`] and the data root in the description of a port
/// created for a container.
const DESCRIPTION_DATA_ROOT: &str = " for the dockerd with data root ";

/// Returns the description of a port created for a container of the dockerd whose data
/// root is `data_root`.
pub fn container_port_description(data_root: &str) -> String {
    format!("{DESCRIPTION_CREATED}{DESCRIPTION_DATA_ROOT}{data_root}")
}

/// Returns the data root of the dockerd that a container port was created for, or `None`
/// when the description records none.
///
/// Several dockerds may run on one host under one `binding:host_id`, each with its own
/// agent. A port whose container is missing from one dockerd may belong to another, so an
/// agent deletes such a port only when this data root is its own dockerd's.
pub fn dockerd_data_root(port: &Port) -> Option<&str> {
    port.description
        .strip_prefix(DESCRIPTION_CREATED)?
        .strip_prefix(DESCRIPTION_DATA_ROOT)
        .filter(|root| !root.is_empty())
}

/// Outcome of [`Attacher::attach_container`] for the container's port on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortAction {
    /// The port was plugged into the container's current namespace already.
    Unchanged,
    /// The container's existing port was plugged into its current namespace.
    Replugged,
    /// A new port was created and plugged.
    Created,
    /// The port that [`Attacher::prepare_container_port`] made (created, or a spare taken)
    /// was plugged for the container's first start.
    Prepared,
}

impl PortAction {
    /// Returns the lowercase name used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unchanged => "unchanged",
            Self::Replugged => "replugged",
            // The port is new to the container either way. Only the moment it was made differs.
            Self::Created | Self::Prepared => "created",
        }
    }
}

/// One network a container asks for, with its options.
#[derive(Debug, Clone)]
pub struct NetworkRequest {
    /// Network name or UUID.
    pub network: String,
    /// Fixed IPs to request when a port is created; each goes to the subnet containing it.
    pub ips: Vec<IpAddr>,
    /// Security groups (names or IDs) for a created port.
    pub security_groups: Vec<String>,
    /// How long to wait for ACTIVE; `None` returns once plugged.
    pub wait: Option<Duration>,
}

impl<P: Plumbing> Attacher<P> {
    /// Attaches the container to one network, reusing its Clampify port on that network,
    /// and returns the attachment with what was done to the port.
    ///
    /// A port that is already plugged here is returned as it is, so repeating the call is
    /// harmless. A port left over from before a restart is plugged into the new namespace
    /// with the same MAC and IPs. Only when the container has no port there is one created.
    pub async fn attach_container(
        &self,
        target: &ContainerTarget,
        request: &NetworkRequest,
    ) -> Result<(Attachment, PortAction), AttachError> {
        let info = self.network(&request.network).await?;
        let existing = self
            .container_ports(&target.id)
            .await
            .map_err(|source| AttachError::ListPorts {
                device: target.id.clone(),
                source,
            })?
            .into_iter()
            .find(|port| port.network_id == info.network.id);

        let mut action = PortAction::Created;
        let source = match existing {
            Some(port) if self.take_prepared(&port.id) => {
                // Never plugged, so there is no old interface or OVS row to check or remove.
                action = PortAction::Prepared;
                PortSource::Replug(Box::new(port))
            }
            Some(port) => {
                let plugged = self
                    .plumbing
                    .plugged_ifname(&host_ifname(&port.id), &target.netns)
                    .await
                    .map_err(|source| AttachError::Plug {
                        port: port.id.clone(),
                        netns: target.netns.to_string(),
                        source: Box::new(source),
                    })?;
                if let Some(ifname) = plugged {
                    let status = port.status.clone();
                    let attachment = attachment(&port, &info, ifname, &target.netns, status);
                    return Ok((attachment, PortAction::Unchanged));
                }
                // The OVS row of the previous namespace may remain after a restart.
                self.unplug_quietly(&port.id).await;
                action = PortAction::Replugged;
                PortSource::Replug(Box::new(port))
            }
            None => PortSource::Create {
                ips: request.ips.clone(),
                security_groups: request.security_groups.clone(),
                description: Some(container_description(target.data_root.as_deref())),
            },
        };

        let attach = AttachRequest {
            network: info.network.id.clone(),
            netns: target.netns.clone(),
            device_id: target.id.clone(),
            port_name: port_name(&target.name),
            source,
            wait: request.wait,
            netns_created: false,
        };
        Ok((self.attach(&attach).await?, action))
    }

    /// Creates the container's port on the network before the container runs, so that its
    /// start only has to plug it. Returns `None` when the container has a port there already.
    ///
    /// The agent calls this on Docker's `create` event. `docker run` starts the container
    /// a few hundred milliseconds later, and the Neutron POST runs in that gap instead of
    /// after the start. A container that is never started keeps its port (DOWN) until it
    /// is removed, as a stopped one does.
    ///
    /// With `spares`, a request on their network without fixed IPs or security groups takes
    /// a spare port instead, which costs Neutron an update rather than a create. If the
    /// update fails, the spare is deleted and a port created as usual.
    pub async fn prepare_container_port(
        &self,
        container: &ContainerRef<'_>,
        request: &NetworkRequest,
        spares: Option<&SparePorts>,
    ) -> Result<Option<PreparedPort>, AttachError> {
        let info = self.network(&request.network).await?;
        let has_port = self
            .container_ports(container.id)
            .await
            .map_err(|source| AttachError::ListPorts {
                device: container.id.to_owned(),
                source,
            })?
            .iter()
            .any(|port| port.network_id == info.network.id);
        if has_port {
            return Ok(None);
        }
        let spare = spares
            .filter(|spares| spares.network_id() == info.network.id)
            .filter(|_| request.ips.is_empty() && request.security_groups.is_empty())
            .and_then(SparePorts::take);
        if let Some(spare) = spare {
            match self.claim_spare(&spare, container).await {
                Ok(port) => {
                    self.remember_prepared(&port);
                    return Ok(Some(PreparedPort {
                        port,
                        from_spare: true,
                    }));
                }
                Err(err) => {
                    tracing::warn!(container = %container.id, port = %spare.id, error = %err, "spare port update failed; deleting the spare and creating a port instead");
                    if let Err(err) = self.neutron.delete_port(&spare.id).await {
                        tracing::warn!(port = %spare.id, error = %err, "spare port delete failed; delete it with `openstack port delete`");
                    }
                }
            }
        }
        let description = container_description(container.data_root);
        let new_port = NewPort {
            device_id: container.id,
            name: &port_name(container.name),
            ips: &request.ips,
            security_groups: &request.security_groups,
            description: &description,
        };
        let port = self.create_port(&request.network, &info, &new_port).await?;
        self.remember_prepared(&port);
        Ok(Some(PreparedPort {
            port,
            from_spare: false,
        }))
    }

    /// Caches a port made for a container that has not started, and marks it prepared.
    fn remember_prepared(&self, port: &Port) {
        self.ports.insert(port);
        if let Ok(mut prepared) = self.prepared.lock() {
            prepared.insert(port.id.clone());
        }
    }

    /// Removes `port_id` from the prepared ports; returns whether it was there.
    pub(super) fn take_prepared(&self, port_id: &str) -> bool {
        self.prepared
            .lock()
            .map(|mut prepared| prepared.remove(port_id))
            .unwrap_or(false)
    }

    /// Lists the Clampify ports on this host whose `device_id` is `container_id`, from the
    /// port cache when it knows them (the agent seeds it), else from Neutron.
    pub async fn container_ports(
        &self,
        container_id: &str,
    ) -> Result<Vec<Port>, crate::openstack::NeutronError> {
        if let Some(ports) = self.ports.get(container_id) {
            return Ok(ports);
        }
        let filter = PortFilters {
            device_owner: Some(DEVICE_OWNER.to_string()),
            host_id: Some(self.host.clone()),
            device_id: Some(container_id.to_string()),
            ..PortFilters::default()
        };
        let ports = self.neutron.list_ports(&filter).await?;
        self.ports.put(container_id, ports.clone());
        Ok(ports)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port_with_description(description: &str) -> Port {
        let json = serde_json::json!({
            "id": "a5f0a6b0-4c38-4bd4-9a49-1a1f0d0f6e21",
            "network_id": "76f10e03-fe7a-497d-8573-827462e46c1d",
            "mac_address": "fa:16:3e:00:00:01",
            "fixed_ips": [],
            "status": "ACTIVE",
            "device_id": "",
            "device_owner": DEVICE_OWNER,
            "description": description,
        });
        serde_json::from_value(json).expect("a valid port")
    }

    #[test]
    fn data_root_round_trips() {
        let description = container_port_description("/var/lib/docker");
        let port = port_with_description(&description);

        assert_eq!(
            description,
            "created by clampify for the dockerd with data root /var/lib/docker"
        );
        assert_eq!(dockerd_data_root(&port), Some("/var/lib/docker"));
        assert!(super::super::created_by_clampify(&port));
    }

    #[test]
    fn other_descriptions_have_no_data_root() {
        for description in [
            "",
            DESCRIPTION_CREATED,
            super::super::DESCRIPTION_NETNS_CREATED,
            "created by clampify for the dockerd with data root ",
            "made by hand for the dockerd with data root /var/lib/docker",
        ] {
            let port = port_with_description(description);

            assert_eq!(dockerd_data_root(&port), None, "{description:?}");
        }
    }
}
