//! Creates, checks and deletes one Neutron port bound to this host, against a real cloud.
//!
//! ```text
//! cargo run --example neutron_smoke -- --openrc /var/lib/clampify-lab/agent-openrc
//! ```
//!
//! The user needs the admin or service role, because the port sets `binding:host_id`. Exits
//! non-zero when a check fails; the port is deleted in every case once it exists.

#![allow(clippy::print_stdout)] // an example reports on stdout

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clampify::openstack::{
    CredentialOptions, Credentials, Neutron, NeutronError, Port, PortCreate, PortFilters, Session,
};
use clap::Parser;

/// Smoke test of the Neutron client: one port, created bound to this host and deleted.
#[derive(Parser)]
struct Args {
    /// Shell file of OS_* variables to authenticate with.
    #[arg(long)]
    openrc: Option<PathBuf>,
    /// Cloud name from clouds.yaml.
    #[arg(long)]
    os_cloud: Option<String>,
    /// Network name or ID.
    #[arg(long, default_value = "demo-net")]
    network: String,
    /// The binding:host_id to request. Defaults to this machine's host name, which is the
    /// lab's OVN chassis name.
    #[arg(long)]
    host: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let host = match args.host {
        Some(host) => host,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .context("read the host name")?
            .trim()
            .to_owned(),
    };
    let options = CredentialOptions {
        os_cloud: args.os_cloud,
        openrc: args.openrc,
        insecure: false,
    };
    let env: HashMap<String, String> = std::env::vars().collect();
    let credentials = Credentials::load(&options, &env)?;
    println!(
        "authenticating {} at {}",
        credentials.identity(),
        credentials.auth_url
    );
    let neutron = Neutron::new(Session::new(credentials)?);

    let started = Instant::now();
    let endpoint = neutron.session().network_endpoint().await?;
    println!(
        "token and catalog: {:?}; neutron at {endpoint}",
        started.elapsed()
    );

    let started = Instant::now();
    let network = neutron.find_network(&args.network).await?;
    let subnets = neutron.subnets_of(&network.id).await?;
    println!(
        "network {} ({}), mtu {:?}, {} subnets: {:?}",
        network.name,
        network.id,
        network.mtu,
        subnets.len(),
        started.elapsed()
    );

    let port = create_port(&neutron, &network.id, &host).await?;
    let checked = check_port(&neutron, &port, &host).await;
    let deleted = delete_port(&neutron, &port.id).await;
    println!(
        "requests: keystone {}, neutron {}",
        neutron.session().keystone_requests(),
        neutron.session().neutron_requests()
    );
    checked.and(deleted)
}

/// Creates the port with tags and a description in the POST body.
async fn create_port(neutron: &Neutron, network: &str, host: &str) -> anyhow::Result<Port> {
    let request = PortCreate {
        network_id: network.to_owned(),
        name: "clampify-smoke".to_owned(),
        host_id: host.to_owned(),
        device_owner: "compute:clampify".to_owned(),
        device_id: format!("clampify-smoke-{}", std::process::id()),
        tags: vec!["clampify".to_owned(), "clampify-smoke".to_owned()],
        description: Some("clampify".to_owned()),
        ..PortCreate::default()
    };
    let started = Instant::now();
    let port = neutron.create_port(&request).await?;
    println!(
        "created port {} in {:?}: mac {}, ips {:?}, status {}, vif_type {:?}, tags {:?}",
        port.id,
        started.elapsed(),
        port.mac_address,
        port.fixed_ips,
        port.status,
        port.binding_vif_type,
        port.tags
    );
    Ok(port)
}

async fn check_port(neutron: &Neutron, port: &Port, host: &str) -> anyhow::Result<()> {
    if port.binding_vif_type.as_deref() != Some("ovs") {
        bail!(
            "binding:vif_type is {:?}, expected ovs",
            port.binding_vif_type
        );
    }
    if port.binding_host_id.as_deref() != Some(host) {
        bail!(
            "binding:host_id is {:?}, expected {host}",
            port.binding_host_id
        );
    }
    // Neutron keeps tags from the POST body only with the tag_ports_during_bulk_creation
    // ML2 extension driver, so report which case this cloud is.
    if port.tags.is_empty() {
        println!("tags in the POST body were accepted but not stored");
    } else {
        println!("tags in the POST body were stored: {:?}", port.tags);
    }
    if port.description != "clampify" {
        bail!("description is {:?}, expected clampify", port.description);
    }

    let filters = PortFilters {
        device_id: Some(port.device_id.clone()),
        description: Some("clampify".to_owned()),
        ..PortFilters::default()
    };
    let listed = neutron.list_ports(&filters).await?;
    if listed.len() != 1 {
        bail!(
            "listing by device_id and description found {} ports, expected 1",
            listed.len()
        );
    }
    let statuses = neutron.statuses(&[port.id.as_str()]).await?;
    println!("status poll: {statuses:?}");

    // Nothing plugs the port, so it stays DOWN: a short wait must time out.
    match neutron
        .wait_active(
            &port.id,
            Duration::from_millis(300),
            Duration::from_millis(100),
        )
        .await
    {
        Err(NeutronError::NotActive { status, .. }) => println!("unplugged port stays {status}"),
        other => bail!("wait_active on an unplugged port returned {other:?}"),
    }
    Ok(())
}

async fn delete_port(neutron: &Neutron, port_id: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let existed = neutron.delete_port(port_id).await?;
    println!(
        "deleted port in {:?} (existed: {existed})",
        started.elapsed()
    );
    if !existed {
        bail!("delete_port returned false for the new port {port_id}");
    }
    if neutron.delete_port(port_id).await? {
        bail!("a second delete_port of {port_id} returned true");
    }
    match neutron.show_port(port_id).await {
        Err(error) if error.is_not_found() => println!("show after delete: {error}"),
        other => bail!("show_port after delete returned {other:?}"),
    }
    Ok(())
}
