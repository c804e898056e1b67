//! Prometheus metrics of the agent and the `/metrics` and `/healthz` HTTP server.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::openstack::Session;

/// Label of the reconcile action counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub action: String,
}

/// The agent's counters, shared by its tasks.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Seconds from the start of an attach to the port being ACTIVE.
    pub attach_seconds: Histogram,
    pub attaches: Counter,
    pub attach_failures: Counter,
    pub detaches: Counter,
    /// Clampify container ports bound to this host: counted by each reconcile pass, then
    /// changed by the ports the agent creates and deletes.
    pub ports_managed: Gauge,
    pub event_stream_reconnects: Counter,
    pub reconcile_actions: Family<ActionLabel, Counter>,
    /// Whether the Docker event stream is connected now.
    pub event_stream_up: AtomicBool,
    /// Whether Neutron responded to the port listing of the last reconcile pass.
    /// NOTE: reconcile runs at start and after each reconnect to dockerd only, so this can
    /// be stale; failed attaches show in `attach_failures` sooner.
    pub neutron_up: AtomicBool,
    /// HTTP requests the agent's OpenStack session sent, copied from it at each scrape.
    pub neutron_requests: Counter,
    pub keystone_requests: Counter,
    session: std::sync::OnceLock<Session>,
}

impl Metrics {
    pub fn new() -> Self {
        let attach_seconds =
            Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]);
        let mut metrics = Self {
            registry: Registry::with_prefix("clampify"),
            attach_seconds,
            attaches: Counter::default(),
            attach_failures: Counter::default(),
            detaches: Counter::default(),
            ports_managed: Gauge::default(),
            event_stream_reconnects: Counter::default(),
            reconcile_actions: Family::default(),
            event_stream_up: AtomicBool::new(false),
            neutron_up: AtomicBool::new(true),
            neutron_requests: Counter::default(),
            keystone_requests: Counter::default(),
            session: std::sync::OnceLock::new(),
        };
        metrics.register();
        metrics
    }

    fn register(&mut self) {
        let registry = &mut self.registry;
        registry.register(
            "attach_seconds",
            "Time from a container start to its port being ACTIVE",
            self.attach_seconds.clone(),
        );
        registry.register(
            "attaches",
            "Ports attached to containers",
            self.attaches.clone(),
        );
        registry.register(
            "attach_failures",
            "Attaches that failed after every retry",
            self.attach_failures.clone(),
        );
        registry.register(
            "detaches",
            "Ports detached from removed containers",
            self.detaches.clone(),
        );
        registry.register(
            "ports_managed",
            "Clampify ports bound to this host",
            self.ports_managed.clone(),
        );
        registry.register(
            "event_stream_reconnects",
            "Reconnects of the Docker event stream",
            self.event_stream_reconnects.clone(),
        );
        registry.register(
            "reconcile_actions",
            "Actions taken by reconcile passes",
            self.reconcile_actions.clone(),
        );
        registry.register(
            "neutron_requests",
            "HTTP requests sent to Neutron",
            self.neutron_requests.clone(),
        );
        registry.register(
            "keystone_requests",
            "HTTP requests sent to Keystone",
            self.keystone_requests.clone(),
        );
    }

    /// Sets the session whose request counts the metrics report; the first call wins.
    pub fn count_requests_of(&self, session: Session) {
        let _ = self.session.set(session);
    }

    /// Brings the request counters up to the session's totals.
    fn sync_request_counters(&self) {
        let Some(session) = self.session.get() else {
            return;
        };
        let neutron_seen = self.neutron_requests.get();
        let keystone_seen = self.keystone_requests.get();
        let neutron_new = session.neutron_requests().saturating_sub(neutron_seen);
        let keystone_new = session.keystone_requests().saturating_sub(keystone_seen);
        self.neutron_requests.inc_by(neutron_new);
        self.keystone_requests.inc_by(keystone_new);
    }

    /// Counts one reconcile action of the given kind.
    pub fn reconcile_action(&self, action: &str) {
        self.reconcile_actions
            .get_or_create(&ActionLabel {
                action: action.to_string(),
            })
            .inc();
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        self.sync_request_counters();
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }

    fn health(&self) -> (bool, String) {
        let events = self.event_stream_up.load(Ordering::Relaxed);
        let neutron = self.neutron_up.load(Ordering::Relaxed);
        let body = serde_json::json!({
            "event_stream": if events { "connected" } else { "disconnected" },
            "neutron": if neutron { "reachable" } else { "unreachable" },
        });
        (events && neutron, body.to_string())
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Serves `/metrics` and `/healthz` on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let metrics = metrics.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(&request, &metrics)) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(err) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(error = %err, "metrics connection ended");
            }
        });
    }
}

fn respond(request: &Request<hyper::body::Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match request.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        "/healthz" => {
            let (healthy, body) = metrics.health();
            let status = if healthy {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, "application/json", body)
        }
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found; try /metrics or /healthz\n".to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_attach_counters() {
        let metrics = Metrics::new();
        metrics.attaches.inc();
        metrics.attach_seconds.observe(0.2);
        metrics.reconcile_action("delete_port");

        let text = metrics.render();

        assert!(text.contains("clampify_attaches_total 1"), "{text}");
        assert!(text.contains("clampify_attach_seconds_count 1"), "{text}");
        assert!(
            text.contains("clampify_reconcile_actions_total{action=\"delete_port\"} 1"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn render_copies_request_totals() {
        let server = wiremock::MockServer::start().await;
        crate::openstack::testing::keystone(&server, "token-1")
            .mount(&server)
            .await;
        let session = crate::openstack::testing::session(&server);
        session.network_endpoint().await.unwrap();
        let metrics = Metrics::new();
        metrics.count_requests_of(session);

        let text = metrics.render();

        assert!(
            text.contains("clampify_keystone_requests_total 1"),
            "{text}"
        );
        assert!(text.contains("clampify_neutron_requests_total 0"), "{text}");
    }

    #[test]
    fn health_needs_event_stream() {
        let metrics = Metrics::new();

        let (healthy, body) = metrics.health();

        assert!(!healthy);
        assert!(body.contains("disconnected"), "{body}");
    }
}
