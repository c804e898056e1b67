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
        let path = format!("/etc/netns/{}/resolv.conf", args.netns);
        plumbing::write_resolv_conf(path.as_ref(), &attachment.dns_nameservers)
            .with_context(|| format!("write DNS servers to {path}"))?;
    }
    output::attachment(settings, &attachment)
}

/// A port may be adopted when it is unbound, or already bound to this host by Clampify.
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
    Netns::named(&args.netns)?;
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
        if row_says_created {
            remove_netns(&args.netns);
        }
        return output::message(
            settings,
            &format!(
                "port {} is already gone{}",
                args.port,
                if unplugged.ovs_port || unplugged.link {
                    "; removed its leftover OVS port and veth"
                } else {
                    ""
                }
            ),
            &args.port,
        );
    };

    check_deletable(&port, settings, &args.netns)?;
    let netns_created = row_says_created || netns_created_with(&port);
    attacher.detach(&port).await?;
    if netns_created {
        remove_netns(&args.netns);
    }
    output::message(settings, &format!("deleted port {}", port.id), &port.id)
}

/// Refuses to touch a port that Clampify did not bind here, or that is plugged elsewhere.
fn check_deletable(port: &Port, settings: &Settings, netns: &str) -> anyhow::Result<()> {
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
    let expected = format!("{NETNS_DEVICE_PREFIX}{netns}");
    if port.device_id != expected {
        bail!(
            "port {} is plugged into {:?}, not into network namespace {netns}; nothing was changed",
            port.id,
            port.device_id
        );
    }
    Ok(())
}

fn remove_netns(name: &str) {
    if let Err(err) = plumbing::delete_named(name) {
        tracing::warn!(netns = name, error = %err, "could not remove network namespace");
    }
}

/// Names the containers that own ports, by container ID. Best effort: `list` also serves
/// hosts without Docker, so a Docker that cannot be reached leaves the names out.
async fn container_names(settings: &Settings, ports: &[Port]) -> HashMap<String, String> {
    let mut names = HashMap::new();
    let is_container = |id: &str| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
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
