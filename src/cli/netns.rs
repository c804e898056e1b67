//! `clampify create`, `delete` and `list`: ports plugged into named network namespaces.

use std::collections::HashMap;

use anyhow::{bail, Context};

use clampify::attach::{
    netns_created_with, AttachRequest, Plumbing, PortSource, DEVICE_OWNER, OVS_KEY_IFNAME,
    OVS_KEY_NETNS, OVS_KEY_NETNS_CREATED,
};
use clampify::openstack::{Port, PortFilters};
use clampify::plumbing::{self, host_ifname, Netns, OvsInterface};

use super::args::{CreateArgs, DeleteArgs};
use super::output::{self, ListEntry};
use super::Settings;

/// Folder of per-namespace files that `ip netns exec` bind-mounts over /etc.
const NETNS_ETC: &str = "/etc/netns";

/// Prefix of the `device_id` of a port plugged into a named namespace.
const NETNS_DEVICE_PREFIX: &str = "netns:";

pub async fn create(settings: &Settings, args: CreateArgs) -> anyhow::Result<()> {
    // Bad input changes nothing: check the name, network and adopted port before creating.
    let netns = Netns::named(&args.netns)?;
    let attacher = settings.attacher().await?;
    attacher.network(&args.network).await?;
    let source = match &args.port {
        Some(port_id) => {
            check_adoptable(&attacher.neutron().show_port(port_id).await?, settings)?;
            PortSource::Adopt {
                port: port_id.clone(),
            }
        }
        None => PortSource::Create {
            ips: args.port_args.ips.clone(),
            security_groups: args.port_args.security_groups.clone(),
            description: None,
        },
    };

    let (_, created) = plumbing::ensure_named(&args.netns)
        .with_context(|| format!("create network namespace {}", args.netns))?;
    let request = AttachRequest {
        network: args.network.clone(),
        netns: netns.clone(),
        device_id: format!("{NETNS_DEVICE_PREFIX}{}", args.netns),
        port_name: format!("clampify-{}", args.netns),
        source,
        wait: settings.wait(&args.port_args.wait),
        netns_created: created,
    };
    let attachment = match attacher.attach(&request).await {
        Ok(attachment) => attachment,
        Err(err) => {
            if created {
                remove_netns(&args.netns);
            }
            return Err(err.into());
        }
    };

    if !attachment.dns_nameservers.is_empty() {
        let path = format!("{NETNS_ETC}/{}/resolv.conf", args.netns);
        plumbing::write_resolv_conf(path.as_ref(), &attachment.dns_nameservers)
            .with_context(|| format!("write DNS servers to {path}"))?;
    }
    output::attachment(settings, &attachment)
}

/// Accepts a port for adoption when it is unbound, or already bound to this host by Clampify.
fn check_adoptable(port: &Port, settings: &Settings) -> anyhow::Result<()> {
    let bound_to = port.binding_host_id.as_deref().unwrap_or("");
    if !bound_to.is_empty() && bound_to != settings.host {
        bail!("port {} is bound to host {bound_to}; only an unbound port can be adopted; nothing was changed", port.id);
    }
    if !port.device_owner.is_empty() && port.device_owner != DEVICE_OWNER {
        bail!("port {} belongs to device owner {}; only a port with no owner can be adopted; nothing was changed", port.id, port.device_owner);
    }
    Ok(())
}

pub async fn delete(settings: &Settings, args: DeleteArgs) -> anyhow::Result<()> {
    check_port_id(&args.port)?;
    let attacher = settings.attacher().await?;
    let tap = host_ifname(&args.port);
    let row = attacher.plumbing().find_interface(&tap).await?;
    let row_says_created = row
        .as_ref()
        .is_some_and(|r| r.external_ids.contains_key(OVS_KEY_NETNS_CREATED));

    let port = match attacher.neutron().show_port(&args.port).await {
        Ok(port) => Some(port),
        Err(err) if err.is_not_found() => None,
        Err(err) => return Err(err).context(format!("look up port {}", args.port)),
    };
    let Some(port) = port else {
        // The port is gone; still clear what this host may have kept of it.
        let unplugged = attacher.plumbing().unplug(&tap).await?;
        if row_says_created && Netns::named(&args.netns).is_ok() {
            remove_netns_if_unused(&attacher, &args.netns, &args.port).await;
        }
        let leftovers = if unplugged.ovs_port || unplugged.link {
            "; removed its leftover OVS port and veth"
        } else {
            ""
        };
        let text = format!("port {} is already gone{leftovers}", args.port);
        return output::message(settings, &text, &args.port);
    };

    let target = check_deletable(&port, settings, &args.netns).await?;
    attacher.detach(&port).await?;
    let mut text = format!("deleted port {}", port.id);
    if target == Target::Netns && (row_says_created || netns_created_with(&port)) {
        if remove_netns_if_unused(&attacher, &args.netns, &port.id).await {
            text.push_str(&format!(" and network namespace {}", args.netns));
        } else {
            text.push_str(&format!(
                "; network namespace {} still holds other Clampify ports and is kept",
                args.netns
            ));
        }
    }
    output::message(settings, &text, &port.id)
}

/// Rejects a port ID that is not a full UUID, so that a shortened ID is not taken for a
/// port that is already gone.
fn check_port_id(port: &str) -> anyhow::Result<()> {
    let groups: Vec<&str> = port.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|group| group.len()).collect();
    let hex = port.chars().all(|c| c == '-' || c.is_ascii_hexdigit());
    if lengths != [8, 4, 4, 4, 12] || !hex {
        bail!("invalid port ID {port:?}: expected a full UUID such as 4312b826-10e5-4b00-9729-cbcf4a52a225; `clampify list` shows the IDs");
    }
    Ok(())
}

/// Kind of target a port to delete is plugged into.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Netns,
    Container,
}

/// Refuses to touch a port that Clampify did not bind here, or that is plugged elsewhere.
/// `target` is the namespace name, or the container (name or ID) for a container's port.
async fn check_deletable(port: &Port, settings: &Settings, target: &str) -> anyhow::Result<Target> {
    if port.device_owner != DEVICE_OWNER {
        bail!(
            "port {} is not a Clampify port (device_owner {:?}); nothing was changed",
            port.id,
            port.device_owner
        );
    }
    let bound_to = port.binding_host_id.as_deref().unwrap_or("");
    if bound_to != settings.host {
        bail!("port {} is bound to host {bound_to:?}, not to this host {}; run delete on that host; nothing was changed", port.id, settings.host);
    }
    if let Some(netns) = port.device_id.strip_prefix(NETNS_DEVICE_PREFIX) {
        if netns != target {
            bail!("port {} is plugged into network namespace {netns}, not {target}; nothing was changed", port.id);
        }
        return Ok(Target::Netns);
    }
    // A container's port: the target names the container, which may already be removed.
    if port.device_id == target || port.device_id.starts_with(target) && target.len() >= 12 {
        return Ok(Target::Container);
    }
    let docker = clampify::docker::Docker::connect(settings.docker_host.as_deref()).await?;
    match docker.inspect(target).await {
        Ok(container) if container.id == port.device_id => Ok(Target::Container),
        Ok(container) => bail!("port {} belongs to container {}, not to container {} ({}); nothing was changed", port.id, port.device_id, container.name, container.id),
        Err(_) => bail!("port {} belongs to container {}, not to {target}; pass that container's name or ID; nothing was changed", port.id, port.device_id),
    }
}

/// Removes a namespace that `create` made once no other Clampify port of this host is
/// plugged into it, and its `/etc/netns/NAME` folder. Returns whether it was removed.
async fn remove_netns_if_unused(
    attacher: &clampify::attach::Attacher<clampify::attach::HostPlumbing>,
    name: &str,
    deleted_port: &str,
) -> bool {
    let filter = PortFilters {
        device_owner: Some(DEVICE_OWNER.to_string()),
        host_id: Some(attacher.host().to_string()),
        device_id: Some(format!("{NETNS_DEVICE_PREFIX}{name}")),
        ..PortFilters::default()
    };
    match attacher.neutron().list_ports(&filter).await {
        Ok(ports) if ports.iter().any(|port| port.id != deleted_port) => return false,
        Ok(_) => {}
        Err(err) => {
            tracing::warn!(netns = name, error = %err, "could not check the namespace for other ports; keeping it");
            return false;
        }
    }
    remove_netns(name);
    true
}

/// Removes a namespace and the resolv.conf folder that `create` wrote for it.
fn remove_netns(name: &str) {
    if let Err(err) = plumbing::delete_named(name) {
        tracing::warn!(netns = name, error = %err, "could not remove network namespace");
    }
    let folder = std::path::Path::new(NETNS_ETC).join(name);
    if let Err(err) = std::fs::remove_dir_all(&folder) {
        if err.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(netns = name, error = %err, "could not remove {}", folder.display());
        }
    }
}

/// Names the containers that own ports, by container ID. Best effort: `list` also serves
/// hosts without Docker, so a Docker that cannot be reached leaves the names out.
async fn container_names(settings: &Settings, ports: &[Port]) -> HashMap<String, String> {
    let mut names = HashMap::new();
    let is_container = clampify::docker::is_container_id;
    if !ports.iter().any(|port| is_container(&port.device_id)) {
        return names;
    }
    let Ok(docker) = clampify::docker::Docker::connect(settings.docker_host.as_deref()).await
    else {
        return names;
    };
    for port in ports.iter().filter(|port| is_container(&port.device_id)) {
        if let Ok(container) = docker.inspect(&port.device_id).await {
            names.insert(port.device_id.clone(), container.name);
        }
    }
    names
}

pub async fn list(settings: &Settings) -> anyhow::Result<()> {
    let attacher = settings.attacher().await?;
    let filter = PortFilters {
        device_owner: Some(DEVICE_OWNER.to_string()),
        host_id: Some(settings.host.clone()),
        ..PortFilters::default()
    };
    let ports = attacher
        .neutron()
        .list_ports(&filter)
        .await
        .context("list Clampify ports")?;
    let rows: HashMap<String, OvsInterface> = attacher
        .plumbing()
        .interfaces()
        .await?
        .into_iter()
        .filter_map(|row| {
            row.external_ids
                .get("iface-id")
                .cloned()
                .map(|id| (id, row))
        })
        .collect();

    let containers = container_names(settings, &ports).await;
    let mut entries = Vec::new();
    for port in ports {
        let row = rows.get(&port.id);
        let tap = host_ifname(&port.id);
        entries.push(ListEntry {
            container: containers.get(&port.device_id).cloned(),
            netns: row
                .and_then(|r| r.external_ids.get(OVS_KEY_NETNS).cloned())
                .or_else(|| {
                    port.device_id
                        .strip_prefix(NETNS_DEVICE_PREFIX)
                        .map(str::to_string)
                }),
            interface: row.and_then(|r| r.external_ids.get(OVS_KEY_IFNAME).cloned()),
            ip_addresses: port
                .fixed_ips
                .iter()
                .map(|f| f.ip_address.to_string())
                .collect(),
            status: port.status.clone(),
            ovs_port: row.is_some(),
            link: plumbing::link_exists(&tap).await.unwrap_or(false),
            device_id: port.device_id.clone(),
            network_id: port.network_id.clone(),
            port_id: port.id,
        });
    }
    output::list(settings, &entries)
}
