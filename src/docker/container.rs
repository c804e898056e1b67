//! Container state as Clampify needs it, read from `GET /containers/{id}/json`.

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::models::ContainerInspectResponse;

/// Docker's `State.StartedAt` for a container that never started (Go's zero `time.Time`).
const NEVER_STARTED: &str = "0001-01-01T00:00:00Z";

/// A container's network mode, parsed from `HostConfig.NetworkMode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    /// `none`: a private netns that has only loopback.
    None,
    /// `bridge`, or `default`, which is Docker's name for `bridge` on Linux.
    Bridge,
    /// `host`: the host's own netns.
    Host,
    /// `container:<name or id>`: the netns of another container.
    Container(String),
    /// A user-defined network name, or a mode this parser does not know.
    Other(String),
}

impl NetworkMode {
    /// Parses a `HostConfig.NetworkMode` value. Every input maps to a mode.
    ///
    /// An empty value counts as `default`, because that is what dockerd stores when the
    /// client sent no mode.
    pub fn parse(mode: &str) -> Self {
        match mode {
            "none" => Self::None,
            "" | "default" | "bridge" => Self::Bridge,
            "host" => Self::Host,
            _ => match mode.strip_prefix("container:") {
                Some(target) => Self::Container(target.to_owned()),
                None => Self::Other(mode.to_owned()),
            },
        }
    }
}

/// One container as `inspect` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Full 64-character ID.
    pub id: String,
    /// Name without the leading `/` that the Engine API adds.
    pub name: String,
    pub running: bool,
    /// Main process in the PID namespace of dockerd; `None` unless running.
    pub pid: Option<u32>,
    /// `/proc/PID/ns/net` while running, or `NetworkSettings.SandboxKey` when Docker
    /// reported no PID; `None` unless running.
    ///
    /// The `/proc` path is only right for a process that shares dockerd's PID namespace.
    /// Open it, then call [`Docker::verify_netns`](super::Docker::verify_netns), because
    /// the PID may have been reused since the inspect.
    pub netns_path: Option<PathBuf>,
    /// `Config.Labels`.
    pub labels: HashMap<String, String>,
    pub network_mode: NetworkMode,
    /// The host file Docker bind-mounts as the container's `/etc/resolv.conf`.
    pub resolv_conf_path: Option<PathBuf>,
    /// `State.StartedAt` as RFC 3339 text; `None` if the container never started.
    /// Together with `pid` it tells one run of the container from the next.
    pub started_at: Option<String>,
}

impl ContainerInfo {
    /// Converts an inspect response. Returns `None` when the response has no `Id`.
    pub(crate) fn from_inspect(response: ContainerInspectResponse) -> Option<Self> {
        let id = response.id?;
        let state = response.state.unwrap_or_default();
        let running = state.running.unwrap_or(false);
        let pid = if running {
            positive_pid(state.pid)
        } else {
            None
        };

        let sandbox_key = response
            .network_settings
            .and_then(|settings| settings.sandbox_key);
        let netns_path = match (running, pid) {
            (true, Some(pid)) => Some(PathBuf::from(format!("/proc/{pid}/ns/net"))),
            (true, None) => non_empty(sandbox_key).map(PathBuf::from),
            (false, _) => None,
        };

        let network_mode = response
            .host_config
            .and_then(|host_config| host_config.network_mode)
            .unwrap_or_default();

        Some(Self {
            id,
            name: response
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            running,
            pid,
            netns_path,
            labels: response
                .config
                .and_then(|config| config.labels)
                .unwrap_or_default(),
            network_mode: NetworkMode::parse(&network_mode),
            resolv_conf_path: non_empty(response.resolv_conf_path).map(PathBuf::from),
            started_at: non_empty(state.started_at).filter(|started| started != NEVER_STARTED),
        })
    }

    /// Returns whether `later`, inspected after `self`, is the same run of the container.
    ///
    /// A PID can be reused once its process exits, and a restarted container keeps its ID, so
    /// the ID, the PID and the start time must all match, and the container must still run.
    pub fn is_same_run(&self, later: &ContainerInfo) -> bool {
        later.running
            && self.id == later.id
            && self.pid == later.pid
            && self.started_at == later.started_at
    }
}

/// Docker reports PID 0 for a container without a process.
fn positive_pid(pid: Option<i64>) -> Option<u32> {
    pid.and_then(|pid| u32::try_from(pid).ok())
        .filter(|&pid| pid > 0)
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bollard::models::{ContainerConfig, ContainerState, HostConfig, NetworkSettings};

    use super::*;

    const ID: &str = "0f3c9a4e5b6d7c8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6";

    #[test]
    fn network_mode_parses_known_modes() {
        let cases = [
            ("none", NetworkMode::None),
            ("default", NetworkMode::Bridge),
            ("bridge", NetworkMode::Bridge),
            ("", NetworkMode::Bridge),
            ("host", NetworkMode::Host),
            ("container:web", NetworkMode::Container("web".into())),
            ("container:", NetworkMode::Container(String::new())),
            ("backend", NetworkMode::Other("backend".into())),
            ("Host", NetworkMode::Other("Host".into())),
        ];
        for (input, expected) in cases {
            assert_eq!(NetworkMode::parse(input), expected, "input {input:?}");
        }
    }

    fn running_response() -> ContainerInspectResponse {
        ContainerInspectResponse {
            id: Some(ID.into()),
            name: Some("/web".into()),
            state: Some(ContainerState {
                running: Some(true),
                pid: Some(4242),
                started_at: Some("2026-01-02T03:04:05.123456789Z".into()),
                ..Default::default()
            }),
            config: Some(ContainerConfig {
                labels: Some(HashMap::from([(
                    "clampify.networks".into(),
                    "private".into(),
                )])),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                sandbox_key: Some("/var/run/docker/netns/0f3c9a4e5b6d".into()),
                ..Default::default()
            }),
            resolv_conf_path: Some("/var/lib/docker/containers/0f3c/resolv.conf".into()),
            ..Default::default()
        }
    }

    #[test]
    fn inspect_of_running_container_converts() {
        let info = ContainerInfo::from_inspect(running_response()).unwrap();

        assert_eq!(info.id, ID);
        assert_eq!(info.name, "web");
        assert!(info.running);
        assert_eq!(info.pid, Some(4242));
        assert_eq!(info.netns_path, Some(PathBuf::from("/proc/4242/ns/net")));
        assert_eq!(info.labels["clampify.networks"], "private");
        assert_eq!(info.network_mode, NetworkMode::None);
        assert_eq!(
            info.resolv_conf_path,
            Some(PathBuf::from("/var/lib/docker/containers/0f3c/resolv.conf"))
        );
        assert_eq!(
            info.started_at.as_deref(),
            Some("2026-01-02T03:04:05.123456789Z")
        );
    }

    #[test]
    fn inspect_without_pid_uses_sandbox_key() {
        let mut response = running_response();
        if let Some(state) = response.state.as_mut() {
            state.pid = Some(0);
        }

        let info = ContainerInfo::from_inspect(response).unwrap();

        assert_eq!(info.pid, None);
        assert_eq!(
            info.netns_path,
            Some(PathBuf::from("/var/run/docker/netns/0f3c9a4e5b6d"))
        );
    }

    #[test]
    fn inspect_of_stopped_container_has_no_netns() {
        let mut response = running_response();
        response.state = Some(ContainerState {
            running: Some(false),
            pid: Some(0),
            started_at: Some(NEVER_STARTED.into()),
            ..Default::default()
        });
        response.host_config = None;

        let info = ContainerInfo::from_inspect(response).unwrap();

        assert!(!info.running);
        assert_eq!(info.pid, None);
        assert_eq!(info.netns_path, None);
        assert_eq!(info.started_at, None);
        assert_eq!(info.network_mode, NetworkMode::Bridge);
    }

    #[test]
    fn inspect_without_id_is_rejected() {
        let mut response = running_response();
        response.id = None;

        assert_eq!(ContainerInfo::from_inspect(response), None);
    }

    #[test]
    fn same_run_needs_same_pid_and_start() {
        let first = ContainerInfo::from_inspect(running_response()).unwrap();

        let mut restarted = first.clone();
        restarted.started_at = Some("2026-01-02T03:09:00Z".into());
        let mut other_pid = first.clone();
        other_pid.pid = Some(4243);
        let mut stopped = first.clone();
        stopped.running = false;

        assert!(first.is_same_run(&first.clone()));
        assert!(!first.is_same_run(&restarted));
        assert!(!first.is_same_run(&other_pid));
        assert!(!first.is_same_run(&stopped));
    }
}
