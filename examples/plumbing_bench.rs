//! Times the local half of an attach, `HostPlumbing::plug` (the veth pair and its OVS port,
//! until ovs-vswitchd has applied the change), and the matching `unplug`, on a scratch bridge.
//!
//! Run as root with Open vSwitch up: `cargo run --release --example plumbing_bench -- [CYCLES]`.
//! It creates a namespace `clampify-bench-<random>` and a userspace-datapath bridge
//! `cbench<random>`, and removes both at the end. This is a timing check, not a test.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clampify::attach::{HostPlumbing, Plumbing};
use clampify::plumbing::ovsdb::DEFAULT_ENDPOINT;
use clampify::plumbing::{delete_named, ensure_named, InterfaceConfig, OvsdbClient, Route};

/// A namespace and an OVS bridge that exist for the run and are removed on drop.
struct Scratch {
    netns_name: String,
    bridge: String,
}

impl Scratch {
    fn create() -> anyhow::Result<Self> {
        let suffix = random_suffix()?;
        let scratch = Self {
            netns_name: format!("clampify-bench-{suffix}"),
            bridge: format!("cbench{suffix}"),
        };
        ensure_named(&scratch.netns_name)?;
        // Setup only: the timed path below uses OVSDB directly.
        let status = Command::new("ovs-vsctl")
            .args([
                "add-br",
                &scratch.bridge,
                "--",
                "set",
                "Bridge",
                &scratch.bridge,
            ])
            .arg("datapath_type=netdev")
            .status()
            .context("run ovs-vsctl add-br")?;
        if !status.success() {
            bail!("ovs-vsctl add-br {} failed: {status}", scratch.bridge);
        }
        Ok(scratch)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new("ovs-vsctl")
            .args(["--if-exists", "del-br", &self.bridge])
            .status();
        let _ = delete_named(&self.netns_name);
    }
}

fn random_suffix() -> anyhow::Result<String> {
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid")?;
    Ok(uuid.trim().replace('-', "").chars().take(8).collect())
}

fn interface() -> anyhow::Result<InterfaceConfig> {
    Ok(InterfaceConfig {
        name: "eth0".to_owned(),
        mac: "fa:16:3e:00:be:01".parse()?,
        mtu: 1442,
        addresses: vec!["198.51.100.50/24".parse()?, "2001:db8:50::50/64".parse()?],
        routes: vec![
            Route {
                destination: "0.0.0.0/0".parse()?,
                gateway: Some("198.51.100.1".parse()?),
            },
            Route {
                destination: "::/0".parse()?,
                gateway: Some("2001:db8:50::1".parse()?),
            },
        ],
        disable_tx_checksum: true,
    })
}

/// Returns the value below which `fraction` of the sorted samples fall (nearest rank).
fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    println!(
        "{label}: n={} p50={:.2} ms p90={:.2} ms min={:.2} ms max={:.2} ms",
        samples.len(),
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.9)),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cycles: usize = match std::env::args().nth(1) {
        Some(text) => text.parse().context("CYCLES must be a positive integer")?,
        None => 50,
    };
    if cycles == 0 {
        bail!("CYCLES must be a positive integer");
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("plumbing_bench needs root: run it with sudo");
    }

    let scratch = Scratch::create()?;
    let netns = clampify::plumbing::Netns::named(&scratch.netns_name)?;
    let ovs = OvsdbClient::connect(DEFAULT_ENDPOINT).await?;
    let host = HostPlumbing::new(ovs, scratch.bridge.clone());
    let iface = interface()?;
    let host_ifname = format!("cbtap{}", random_suffix()?);
    let external_ids = BTreeMap::from([
        ("attached-mac".to_owned(), iface.mac.to_string()),
        (
            "iface-id".to_owned(),
            "00000000-0000-4000-8000-00000000be01".to_owned(),
        ),
    ]);

    let mut attach = Vec::with_capacity(cycles);
    let mut detach = Vec::with_capacity(cycles);
    for _ in 0..cycles {
        let started = Instant::now();
        host.plug(&netns, &host_ifname, &iface, &external_ids)
            .await?;
        attach.push(started.elapsed());

        let started = Instant::now();
        host.unplug(&host_ifname).await?;
        detach.push(started.elapsed());
    }

    report("attach (veth and OVS port, applied)", attach);
    report("detach (OVS port, applied, and veth)", detach);
    Ok(())
}
