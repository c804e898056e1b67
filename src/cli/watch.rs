//! `clampify watch`: start the agent with settings from flags and the configuration file.

use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};

use clampify::agent::backoff::{Backoff, BackoffPolicy};
use clampify::agent::labels::Policy;
use clampify::agent::{self, AgentConfig};
use clampify::attach::{AttachError, Attacher, HostPlumbing};
use clampify::docker::Docker;

use super::args::WatchArgs;
use super::{Settings, DEFAULT_ACTIVE_TIMEOUT};

/// Containers worked on at the same time unless configured.
const DEFAULT_CONCURRENCY: usize = 8;
/// Attempts per container event unless configured.
const DEFAULT_MAX_ATTEMPTS: u32 = 5;

pub async fn run(settings: &Settings, args: WatchArgs) -> anyhow::Result<()> {
    let file = &settings.file;
    let pick_list = |flag: Vec<String>, key: &Option<Vec<String>>| {
        if flag.is_empty() {
            key.clone().unwrap_or_default()
        } else {
            flag
        }
    };
    let config = AgentConfig {
        default_networks: args
            .network
            .clone()
            .or_else(|| file.network.clone())
            .into_iter()
            .collect(),
        concurrency: args
            .concurrency
            .or(file.concurrency)
            .unwrap_or(DEFAULT_CONCURRENCY),
        max_attempts: args
            .max_attempts
            .or(file.max_attempts)
            .unwrap_or(DEFAULT_MAX_ATTEMPTS),
        spare_ports: args.spare_ports.or(file.spare_ports).unwrap_or(0),
        active_timeout: args
            .timeout
            .or(file.port_active_timeout)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_ACTIVE_TIMEOUT),
        policy: Policy {
            allowed_networks: pick_list(args.allowed_networks, &file.allowed_networks),
            allowed_projects: pick_list(args.allowed_projects, &file.allowed_projects),
        },
        metrics_address: args.metrics_address.or(file.metrics_address),
    };

    if config.spare_ports > 0 && config.default_networks.is_empty() {
        anyhow::bail!(
            "--spare-ports {} needs a default network: give NETWORK, or set `network` in the configuration file",
            config.spare_ports
        );
    }
    let attacher = settings.attacher().await?;
    // Fail at start, not at the first container, when the default network is wrong.
    for network in &config.default_networks {
        check_default_network(&attacher, network).await?;
    }
    let docker = Docker::connect(settings.docker_host.as_deref())
        .await
        .context("connect to Docker")?;

    let mut terminate = signal(SignalKind::terminate()).context("install the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("install the SIGINT handler")?;
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    };
    agent::run(attacher, docker, config, shutdown)
        .await
        .context("run the agent")
}

/// Looks up the default network. While Keystone or Neutron cannot be reached or replies 5xx,
/// as when a host boots before its cloud, the lookup is retried with backoff. A network or
/// credentials that are wrong fail the start at once.
async fn check_default_network(
    attacher: &Attacher<HostPlumbing>,
    network: &str,
) -> anyhow::Result<()> {
    let mut backoff = Backoff::new(BackoffPolicy::EVENT_STREAM);
    loop {
        let err = match attacher.network(network).await {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        let transient =
            matches!(&err, AttachError::FindNetwork { source, .. } if source.is_transient());
        let delay = match backoff.next_delay() {
            Some(delay) if transient => delay,
            _ => return Err(err).context("check the default network"),
        };
        let error = format!("{:#}", anyhow::Error::new(err));
        tracing::warn!(network, retry_in_ms = delay.as_millis() as u64, error = %error, "default network lookup failed; retrying");
        tokio::time::sleep(delay).await;
    }
}
