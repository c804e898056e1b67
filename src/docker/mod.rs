//! The Docker Engine API: inspect and list containers, and follow container events.
//!
//! Works with dockerd 20.10 (API 1.41) and later, over a unix socket only.

mod container;
mod error;
mod events;

use std::collections::HashMap;

use futures::{future, Stream, StreamExt, TryStreamExt};

pub use container::{ContainerInfo, NetworkMode};
pub use error::DockerError;
pub use events::{ContainerEvent, EventAction, EventCursor, EventsSince};

use bollard::query_parameters::{EventsOptions, ListContainersOptions};

/// The endpoint used when the caller passes none: dockerd's default socket.
pub const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";

/// Seconds until a request without a response fails. The event stream is exempt: bollard
/// applies the timeout to the response headers, not to the body that streams the events.
const REQUEST_TIMEOUT_SECS: u64 = 30;

/// How many inspects `list_running` keeps in flight.
const CONCURRENT_INSPECTS: usize = 8;

/// A connection to one dockerd. Cloning is cheap and shares the connection pool.
#[derive(Debug, Clone)]
pub struct Docker {
    client: bollard::Docker,
    endpoint: String,
}

impl Docker {
    /// Connects to dockerd at `endpoint` (`unix:///path` or an absolute socket path), or at
    /// [`DEFAULT_ENDPOINT`] when `None`, and negotiates the API version.
    ///
    /// Pass `DOCKER_HOST` here if it is set. Negotiation costs one `GET /version`, so this
    /// also checks that dockerd responds.
    pub async fn connect(endpoint: Option<&str>) -> Result<Self, DockerError> {
        let endpoint = endpoint.unwrap_or(DEFAULT_ENDPOINT).to_owned();
        let Some(socket) = socket_path(&endpoint) else {
            return Err(DockerError::UnsupportedEndpoint { endpoint });
        };

        let connect_error = |source| DockerError::Connect {
            endpoint: endpoint.clone(),
            source,
        };
        let client = bollard::Docker::connect_with_unix(
            socket,
            REQUEST_TIMEOUT_SECS,
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(connect_error)?;
        // bollard 0.21 leaves the version prefix out of its URLs, which is why it works with
        // API 1.41 today. Negotiating keeps old daemons working if bollard starts sending it.
        let client = client.negotiate_version().await.map_err(connect_error)?;

        tracing::debug!(endpoint, api_version = %client.client_version(), "connected to dockerd");
        Ok(Self { client, endpoint })
    }

    /// Returns the endpoint this client connected to, for messages.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Returns dockerd's data root (`DockerRootDir` of `GET /info`, set with `--data-root`).
    ///
    /// Each dockerd on a host needs its own data root ("Run multiple daemons" in the dockerd
    /// reference), so the data root distinguishes their containers. The `ID` of `GET /info`
    /// does not: dockerd 20.10 derives it from /etc/docker/key.json, which every dockerd on
    /// the host reads.
    pub async fn data_root(&self) -> Result<String, DockerError> {
        let info = self
            .client
            .info()
            .await
            .map_err(|source| DockerError::Info {
                endpoint: self.endpoint.clone(),
                source,
            })?;
        info.docker_root_dir
            .filter(|root| !root.is_empty())
            .ok_or_else(|| DockerError::IncompleteInfo {
                endpoint: self.endpoint.clone(),
                field: "DockerRootDir",
            })
    }

    /// Inspects one container by full ID, unique ID prefix or name, in dockerd's order:
    /// an exact ID first, then a name, then an ID prefix.
    pub async fn inspect(&self, name_or_id: &str) -> Result<ContainerInfo, DockerError> {
        let response = self
            .client
            .inspect_container(name_or_id, None)
            .await
            .map_err(|source| DockerError::from_inspect(name_or_id, source))?;

        ContainerInfo::from_inspect(response).ok_or_else(|| DockerError::IncompleteInspect {
            container: name_or_id.to_owned(),
            field: "Id",
        })
    }

    /// Checks that the container `opened` describes is still in the same run, after the
    /// caller opened `opened.netns_path`.
    ///
    /// PIDs are reused: between the inspect and the open, the container may have exited and
    /// another process taken its PID, so the open file may be some other netns. A second
    /// inspect that shows the same PID and start time proves the file belongs to this run.
    /// A container that has stopped or been removed since passes too: no other run uses
    /// its namespace, and its `die` and `destroy` events clean up. Costs one inspect.
    pub async fn verify_netns(&self, opened: &ContainerInfo) -> Result<(), DockerError> {
        let current = match self.inspect(&opened.id).await {
            Ok(current) => current,
            Err(err) if err.is_not_found() => return Ok(()),
            Err(err) => return Err(err),
        };
        if opened.is_same_run(&current) || !current.running {
            return Ok(());
        }
        Err(DockerError::ContainerChanged {
            container: opened.id.clone(),
            pid: opened.pid,
            started_at: opened.started_at.clone(),
        })
    }

    /// Lists running containers: one list call, then one inspect per container, at most
    /// eight at a time. A container that stops or goes away in between is left out.
    pub async fn list_running(&self) -> Result<Vec<ContainerInfo>, DockerError> {
        let filters = HashMap::from([("status".to_owned(), vec!["running".to_owned()])]);
        let ids = self.list_ids(false, Some(filters)).await?;

        let inspected: Vec<Result<ContainerInfo, DockerError>> = futures::stream::iter(ids)
            .map(|id| async move { self.inspect(&id).await })
            .buffered(CONCURRENT_INSPECTS)
            .collect()
            .await;

        let mut running = Vec::with_capacity(inspected.len());
        for result in inspected {
            match result {
                Ok(info) if info.running => running.push(info),
                Ok(info) => tracing::debug!(container = %info.id, "container stopped while listed"),
                Err(err) if err.is_not_found() => {
                    tracing::debug!(%err, "container gone while listed")
                }
                Err(err) => return Err(err),
            }
        }
        Ok(running)
    }

    /// Lists the full IDs of all containers, stopped ones included. Reconcile needs them,
    /// because a stopped container keeps its ports for its next start.
    pub async fn list_all_ids(&self) -> Result<Vec<String>, DockerError> {
        self.list_ids(true, None).await
    }

    async fn list_ids(
        &self,
        all: bool,
        filters: Option<HashMap<String, Vec<String>>>,
    ) -> Result<Vec<String>, DockerError> {
        let options = ListContainersOptions {
            all,
            filters,
            ..Default::default()
        };
        let summaries = self
            .client
            .list_containers(Some(options))
            .await
            .map_err(|source| DockerError::ListContainers { source })?;

        Ok(summaries
            .into_iter()
            .filter_map(|summary| summary.id)
            .collect())
    }

    /// Streams container `create`, `start`, `die` and `destroy` events, filtered by dockerd.
    ///
    /// With `since`, dockerd first replays the matching events it still buffers from that
    /// time on, inclusive; see [`EventCursor`] for resuming without loss or repeats. Without
    /// it, the stream starts now: subscribe before the startup reconcile so that nothing
    /// between the two is missed. The stream ends when dockerd closes it, for example on a
    /// dockerd restart, and yields `Err` when the connection fails. Either way, reconnect with
    /// backoff and then reconcile.
    pub fn events(
        &self,
        since: Option<EventsSince>,
    ) -> impl Stream<Item = Result<ContainerEvent, DockerError>> + Send + Unpin + 'static {
        let actions = EventAction::ALL;
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            (
                "event".to_owned(),
                actions.map(|a| a.as_str().to_owned()).to_vec(),
            ),
        ]);
        let options = EventsOptions {
            since: since.map(EventsSince::to_query),
            until: None,
            filters: Some(filters),
        };

        self.client
            .events(Some(options))
            .map_err(|source| DockerError::Events { source })
            .try_filter_map(|message| future::ready(Ok(ContainerEvent::from_message(message))))
    }
}

/// Returns whether `id` is a full container ID: 64 hex digits, as Docker makes them and as
/// Clampify stores them in a port's `device_id`.
pub fn is_container_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Returns the socket path of a `unix://` endpoint or an absolute path, or `None` for any
/// other scheme.
fn socket_path(endpoint: &str) -> Option<&str> {
    match endpoint.strip_prefix("unix://") {
        Some(path) if !path.is_empty() => Some(path),
        Some(_) => None,
        None if endpoint.starts_with('/') => Some(endpoint),
        None => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_accepts_unix_endpoints() {
        assert_eq!(
            socket_path("unix:///var/run/docker.sock"),
            Some("/var/run/docker.sock")
        );
        assert_eq!(
            socket_path("/run/user/1000/docker.sock"),
            Some("/run/user/1000/docker.sock")
        );
    }

    #[test]
    fn socket_path_rejects_other_schemes() {
        for endpoint in [
            "tcp://127.0.0.1:2375",
            "ssh://host",
            "npipe:////./pipe/x",
            "unix://",
            "",
        ] {
            assert_eq!(socket_path(endpoint), None, "endpoint {endpoint:?}");
        }
    }

    #[tokio::test]
    async fn connect_rejects_tcp_endpoint() {
        let err = Docker::connect(Some("tcp://127.0.0.1:2375"))
            .await
            .unwrap_err();

        assert!(matches!(err, DockerError::UnsupportedEndpoint { .. }));
        assert_eq!(
            err.to_string(),
            "Docker endpoint tcp://127.0.0.1:2375 is not supported: use a unix:// socket such as unix:///var/run/docker.sock"
        );
    }

    #[tokio::test]
    async fn connect_reports_missing_socket() {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = format!("unix://{}/docker.sock", dir.path().display());

        let err = Docker::connect(Some(&endpoint)).await.unwrap_err();

        assert!(matches!(&err, DockerError::Connect { endpoint: e, .. } if *e == endpoint));
        assert!(err.to_string().contains("is dockerd running"), "{err}");
    }
}
