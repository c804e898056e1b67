//! `clampify insert` and `reinsert`: ports plugged into running Docker containers.

use anyhow::{bail, Context};

use clampify::attach::{
    AttachRequest, ContainerTarget, NetworkRequest, Plumbing, PortSource, DEVICE_OWNER,
};
use clampify::docker::{ContainerInfo, Docker, NetworkMode};
use clampify::openstack::Port;
use clampify::plumbing::{self, host_ifname, Netns};

use super::args::{InsertArgs, ReinsertArgs};
use super::{output, Settings};

pub async fn insert(settings: &Settings, args: InsertArgs) -> anyhow::Result<()> {
    let docker = Docker::connect(settings.docker_host.as_deref()).await?;
    let container = running_container(&docker, &args.container).await?;
    // Recorded on a created port, so that the agent of this dockerd may delete it later.
    let data_root = docker
        .data_root()
        .await
        .context("read the data root of dockerd")?;
    let attacher = settings.attacher().await?;
    let target = target_of(&container, Some(data_root))?;
    let request = NetworkRequest {
        network: args.network.clone(),
        ips: args.port_args.ips.clone(),
        security_groups: args.port_args.security_groups.clone(),
        wait: settings.wait(&args.port_args.wait),
    };
    let (attachment, _) = attacher.attach_container(&target, &request).await?;
    write_dns(&container, &attachment.dns_nameservers)?;
    output::attachment(settings, &attachment)
}

pub async fn reinsert(settings: &Settings, args: ReinsertArgs) -> anyhow::Result<()> {
    let docker = Docker::connect(settings.docker_host.as_deref()).await?;
    let container = running_container(&docker, &args.container).await?;
    let attacher = settings.attacher().await?;
    let port = attacher
        .neutron()
        .show_port(&args.port)
        .await
        .with_context(|| format!("look up port {}", args.port))?;
    check_reinsertable(&port, &container, settings, args.ip)?;

    // The OVS row of the namespace the container had before its restart may remain.
    attacher.plumbing().unplug(&host_ifname(&port.id)).await?;
    let target = target_of(&container, None)?;
    let request = AttachRequest {
        network: port.network_id.clone(),
        netns: target.netns.clone(),
        device_id: container.id.clone(),
        port_name: port.name.clone(),
        source: PortSource::Replug(Box::new(port)),
        wait: settings.wait(&args.wait),
        netns_created: false,
    };
    let attachment = attacher.attach(&request).await?;
    write_dns(&container, &attachment.dns_nameservers)?;
    output::attachment(settings, &attachment)
}

/// Inspects the container and rejects one that is stopped or shares another namespace.
async fn running_container(docker: &Docker, name: &str) -> anyhow::Result<ContainerInfo> {
    let container = docker.inspect(name).await?;
    if !container.running {
        bail!(
            "container {} ({}) is not running; start it first; nothing was changed",
            container.name,
            short_id(&container.id)
        );
    }
    match &container.network_mode {
        NetworkMode::Host => bail!("container {} uses the host's network namespace (--network host); Clampify does not plug into it; nothing was changed", container.name),
        NetworkMode::Container(other) => bail!("container {} shares the network namespace of container {other}; plug into that container instead; nothing was changed", container.name),
        _ => Ok(container),
    }
}

fn target_of(
    container: &ContainerInfo,
    data_root: Option<String>,
) -> anyhow::Result<ContainerTarget> {
    let Some(path) = container.netns_path.clone() else {
        bail!(
            "container {} has no network namespace (no PID); is it running?",
            container.name
        );
    };
    Ok(ContainerTarget {
        id: container.id.clone(),
        name: container.name.clone(),
        netns: Netns::from_path(path),
        data_root,
    })
}

/// A port may be plugged in again only into the container it was made for, on this host.
fn check_reinsertable(
    port: &Port,
    container: &ContainerInfo,
    settings: &Settings,
    ip: Option<std::net::IpAddr>,
) -> anyhow::Result<()> {
    if port.device_owner != DEVICE_OWNER {
        bail!(
            "port {} is not a Clampify port (device_owner {:?}); nothing was changed",
            port.id,
            port.device_owner
        );
    }
    let bound_to = port.binding_host_id.as_deref().unwrap_or("");
    if bound_to != settings.host {
        bail!(
            "port {} is bound to host {bound_to:?}, not to this host {}; nothing was changed",
            port.id,
            settings.host
        );
    }
    if port.device_id != container.id {
        bail!(
            "port {} belongs to device {}, not to container {} ({}); nothing was changed",
            port.id,
            port.device_id,
            container.name,
            short_id(&container.id)
        );
    }
    if let Some(ip) = ip {
        if !port.fixed_ips.iter().any(|fixed| fixed.ip_address == ip) {
            let have: Vec<String> = port
                .fixed_ips
                .iter()
                .map(|f| f.ip_address.to_string())
                .collect();
            bail!(
                "{ip} is not a fixed IP of port {} (it has {}); nothing was changed",
                port.id,
                have.join(", ")
            );
        }
    }
    Ok(())
}

fn write_dns(container: &ContainerInfo, servers: &[std::net::IpAddr]) -> anyhow::Result<()> {
    match &container.resolv_conf_path {
        Some(path) if !servers.is_empty() => plumbing::write_resolv_conf(path, servers)
            .with_context(|| format!("write DNS servers to {}", path.display())),
        _ => Ok(()),
    }
}

fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
