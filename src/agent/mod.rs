//! `clampify watch`: the per-host agent that follows Docker and keeps Neutron in step.
//!
//! The loop subscribes to Docker's container events, then reconciles, then handles events
//! until the stream ends; it reconnects with backoff, resumes from the last event seen and
//! reconciles again. Work on different containers runs concurrently up to a bound, and the
//! events of one container are handled in order.

pub mod backoff;
pub mod decide;
pub mod labels;
pub mod metrics;
pub mod ratelimit;
mod reconcile;
mod spares;
mod worker;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::attach::{Attacher, HostPlumbing, SparePorts};
use crate::docker::{ContainerEvent, Docker, DockerError, EventCursor};

pub use metrics::Metrics;

use backoff::{Backoff, BackoffPolicy};
use labels::Policy;
use ratelimit::LogLimiter;

/// Settings of the agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Networks for containers without a `clampify.networks` label; usually zero or one.
    pub default_networks: Vec<String>,
    /// Containers worked on at the same time.
    pub concurrency: usize,
    /// Attempts per container event before the agent gives up on it.
    pub max_attempts: u32,
    /// Spare ports to keep on the first default network; 0 keeps none.
    pub spare_ports: usize,
    /// How long an attach waits for the port to become ACTIVE.
    pub active_timeout: Duration,
    /// Which networks a label may name.
    pub policy: Policy,
    /// Address of the `/metrics` and `/healthz` server, if any.
    pub metrics_address: Option<SocketAddr>,
}

/// Errors that stop the agent from starting.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("listen on {address} for /metrics and /healthz")]
    BindMetrics {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("read the data root of dockerd at {endpoint}")]
    DataRoot {
        endpoint: String,
        #[source]
        source: DockerError,
    },
}

/// State shared by every task of the agent.
#[derive(Debug)]
struct Shared {
    attacher: Attacher<HostPlumbing>,
    docker: Docker,
    /// Data root of `docker`, recorded on the ports the agent creates (see
    /// [`crate::attach::dockerd_data_root`]).
    data_root: String,
    config: AgentConfig,
    metrics: Arc<Metrics>,
    limiter: LogLimiter,
    /// Bounds the start, die and destroy events worked on at once.
    permits: Semaphore,
    /// Bounds the ports created ahead on `create` events, separately, so that a burst of
    /// creates does not hold up the starts that follow them.
    prepare_permits: Semaphore,
    /// Spare ports of the first default network, when the agent keeps any.
    spares: Option<Arc<SparePorts>>,
}

/// Runs the agent until `shutdown` completes; attached containers stay attached.
pub async fn run(
    attacher: Attacher<HostPlumbing>,
    docker: Docker,
    config: AgentConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    let data_root = docker
        .data_root()
        .await
        .map_err(|source| AgentError::DataRoot {
            endpoint: docker.endpoint().to_owned(),
            source,
        })?;
    let metrics = Arc::new(Metrics::new());
    metrics.count_requests_of(attacher.neutron().session().clone());
    let metrics_server = match config.metrics_address {
        Some(address) => {
            // Binding here makes a taken address fail the start instead of logging later.
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|source| AgentError::BindMetrics { address, source })?;
            tracing::info!(%address, "serving /metrics and /healthz");
            let server_metrics = metrics.clone();
            Some(tokio::spawn(async move {
                if let Err(err) = metrics::serve(listener, server_metrics).await {
                    tracing::error!(%address, error = %err, "metrics server stopped");
                }
            }))
        }
        None => None,
    };
    let permits = Semaphore::new(config.concurrency.max(1));
    let prepare_permits = Semaphore::new(config.concurrency.max(1));
    let spares = spares::setup(&config, &attacher).await;
    let shared = Arc::new(Shared {
        attacher,
        docker,
        data_root,
        config,
        metrics,
        limiter: LogLimiter::default(),
        permits,
        prepare_permits,
        spares,
    });
    shared.log_start();
    let refill = shared
        .spares
        .clone()
        .map(|spares| tokio::spawn(spares::refill(shared.clone(), spares)));

    let mut dispatcher = Dispatcher::new(shared.clone());
    tokio::pin!(shutdown);
    tokio::select! {
        () = follow_events(&shared, &mut dispatcher) => {}
        () = &mut shutdown => tracing::info!("stopping: containers stay attached"),
    }
    dispatcher.finish(Duration::from_secs(10)).await;
    if let Some(refill) = refill {
        refill.abort();
    }
    // Spares are cheap to make again, and deleting them leaves nothing behind when the
    // agent is removed. After a crash, the next start adopts them.
    if let Some(spares) = &shared.spares {
        spares::delete(&shared, spares.drain(), "agent stopping").await;
    }
    if let Some(server) = metrics_server {
        server.abort();
    }
    Ok(())
}

impl Shared {
    fn log_start(&self) {
        let config = &self.config;
        tracing::info!(
            host = %self.attacher.host(),
            default_network = %default_networks_label(&config.default_networks),
            docker = %self.docker.endpoint(),
            docker_data_root = %self.data_root,
            concurrency = config.concurrency,
            spare_ports = self.spares.as_ref().map_or(0, |_| config.spare_ports),
            "agent started"
        );
        if config.policy.allowed_networks.is_empty() && config.policy.allowed_projects.is_empty() {
            tracing::info!("no allowed_networks or allowed_projects set: a label may name any network these credentials can see");
        }
    }
}

/// Subscribes, reconciles and handles events, forever; reconnects when the stream ends.
async fn follow_events(shared: &Arc<Shared>, dispatcher: &mut Dispatcher) {
    let mut cursor = EventCursor::new();
    let mut backoff = Backoff::new(BackoffPolicy::EVENT_STREAM);
    loop {
        // Subscribe before reconciling, so an event that happens during the reconcile is
        // still delivered; handling it twice is harmless.
        let mut events = shared.docker.events(cursor.since());
        shared
            .metrics
            .event_stream_up
            .store(true, Ordering::Relaxed);
        reconcile::run(shared, dispatcher).await;

        let mut received = false;
        while let Some(item) = events.next().await {
            match item {
                Ok(event) => {
                    received = true;
                    if cursor.admit(&event) {
                        dispatcher.dispatch(event);
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "Docker event stream failed");
                    break;
                }
            }
        }
        shared
            .metrics
            .event_stream_up
            .store(false, Ordering::Relaxed);
        shared.metrics.event_stream_reconnects.inc();
        if received {
            backoff.reset();
        }
        let delay = backoff
            .next_delay()
            .unwrap_or(BackoffPolicy::EVENT_STREAM.max_delay);
        tracing::warn!(docker = %shared.docker.endpoint(), retry_in_ms = delay.as_millis() as u64, "Docker event stream ended; reconnecting");
        tokio::time::sleep(delay).await;
    }
}

/// Hands events to tasks: one chain per container, so its events run in order.
struct Dispatcher {
    shared: Arc<Shared>,
    chains: HashMap<String, JoinHandle<()>>,
}

impl Dispatcher {
    fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            chains: HashMap::new(),
        }
    }

    /// Queues `event` behind the container's earlier events.
    fn dispatch(&mut self, event: ContainerEvent) {
        self.chains.retain(|_, handle| !handle.is_finished());
        let previous = self.chains.remove(&event.id);
        let shared = self.shared.clone();
        let id = event.id.clone();
        let handle = tokio::spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            worker::handle(&shared, event).await;
        });
        self.chains.insert(id, handle);
    }

    /// Queues an attach of a running container that reconcile found unattached.
    fn dispatch_attach(&mut self, container_id: String, name: String) {
        let event = ContainerEvent {
            action: crate::docker::EventAction::Start,
            id: container_id,
            name,
            labels: HashMap::new(),
            time_nanos: 0,
        };
        self.dispatch(event);
    }

    /// Waits up to `grace` for work in progress, so no attach stops halfway.
    async fn finish(&mut self, grace: Duration) {
        let pending: Vec<JoinHandle<()>> = self.chains.drain().map(|(_, handle)| handle).collect();
        if pending.is_empty() {
            return;
        }
        if tokio::time::timeout(grace, futures::future::join_all(pending))
            .await
            .is_err()
        {
            tracing::warn!(
                grace_s = grace.as_secs(),
                "work still running at shutdown was stopped"
            );
        }
    }
}

/// Formats the default networks for the start log line, with "none" for an empty list.
fn default_networks_label(networks: &[String]) -> String {
    if networks.is_empty() {
        "none".to_string()
    } else {
        networks.join(",")
    }
}
