//! Attaching a running container: one port per network, kept across restarts.

use std::net::IpAddr;
use std::time::Duration;

use super::{
    attachment, AttachError, AttachRequest, Attacher, Attachment, Plumbing, PortSource,
    DEVICE_OWNER,
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
    /// Attaches the container to one network, reusing its Clampify port on that network.
    ///
    /// A port that is already plugged here is returned as it is, so repeating the call is
    /// harmless. A port left over from before a restart is plugged into the new namespace
    /// with the same MAC and IPs. Only when the container has no port there is one created.
    pub async fn attach_container(
        &self,
        target: &ContainerTarget,
        request: &NetworkRequest,
    ) -> Result<Attachment, AttachError> {
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

        let source = match existing {
            Some(port) => {
                let plugged = self
                    .plumbing
                    .plugged_ifname(&host_ifname(&port.id))
                    .await
                    .map_err(|source| AttachError::Plug {
                        port: port.id.clone(),
                        netns: target.netns.to_string(),
                        source: Box::new(source),
                    })?;
                if let Some(ifname) = plugged {
                    let status = port.status.clone();
                    return Ok(attachment(&port, &info, ifname, &target.netns, status));
                }
                // The OVS row of the previous namespace may remain after a restart.
                self.unplug_quietly(&port.id).await;
                PortSource::Replug(Box::new(port))
            }
            None => PortSource::Create {
                ips: request.ips.clone(),
                security_groups: request.security_groups.clone(),
            },
        };

        let attach = AttachRequest {
            network: info.network.id.clone(),
            netns: target.netns.clone(),
            device_id: target.id.clone(),
            port_name: format!("clampify-{}", target.name),
            source,
            wait: request.wait,
            netns_created: false,
        };
        self.attach(&attach).await
    }

    /// Lists the Clampify ports on this host whose `device_id` is `container_id`.
    pub async fn container_ports(
        &self,
        container_id: &str,
    ) -> Result<Vec<Port>, crate::openstack::NeutronError> {
        let filter = PortFilters {
            device_owner: Some(DEVICE_OWNER.to_string()),
            host_id: Some(self.host.clone()),
            device_id: Some(container_id.to_string()),
            ..PortFilters::default()
        };
        self.neutron.list_ports(&filter).await
    }
}
