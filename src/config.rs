//! The TOML configuration file shared by the CLI and the agent.
//!
//! Every key can also be set by a command-line flag or its environment variable. The CLI
//! applies them in this order, highest first: flag, environment variable, this file, built-in
//! default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the configuration file is read from when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/clampify/clampify.toml";

/// Failure to read the configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read configuration file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("parse configuration file {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

/// The keys of `clampify.toml`. Every key is optional.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Network (name or UUID) that `clampify watch` attaches unlabelled containers to.
    pub network: Option<String>,
    /// Neutron `binding:host_id` of this host: its OVN chassis name or OVS agent host.
    pub host: Option<String>,
    /// Open vSwitch integration bridge.
    pub bridge: Option<String>,
    /// OVSDB endpoint, such as `unix:/var/run/openvswitch/db.sock`.
    pub ovsdb: Option<String>,
    /// Docker Engine endpoint, such as `unix:///var/run/docker.sock`.
    pub docker_host: Option<String>,
    /// Cloud name in clouds.yaml.
    pub os_cloud: Option<String>,
    /// Shell file of `export OS_...=` lines.
    pub openrc: Option<PathBuf>,
    /// Skip TLS certificate verification towards Keystone and Neutron.
    pub insecure: Option<bool>,
    /// Seconds to wait for a port to become ACTIVE.
    pub port_active_timeout: Option<u64>,
    /// Containers the agent works on at the same time.
    pub concurrency: Option<usize>,
    /// Attempts per container event before the agent gives up on it.
    pub max_attempts: Option<u32>,
    /// Spare ports the agent keeps bound to this host on its default network.
    pub spare_ports: Option<usize>,
    /// Networks (names or UUIDs) that a `clampify.networks` label may name.
    pub allowed_networks: Option<Vec<String>>,
    /// Projects (IDs) whose networks a `clampify.networks` label may name.
    pub allowed_projects: Option<Vec<String>>,
    /// Address of the Prometheus `/metrics` and `/healthz` server.
    pub metrics_address: Option<SocketAddr>,
}

impl FileConfig {
    /// Reads `path`, or [`DEFAULT_CONFIG_PATH`] when `path` is `None` and that file exists.
    ///
    /// A missing default file gives an empty configuration; a missing explicit file is an error.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let (path, required) = match path {
            Some(path) => (path.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if !required && err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default());
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Self::parse(&text).map_err(|message| ConfigError::Parse { path, message })
    }

    fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|err| err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_every_key() {
        let config = FileConfig::parse(
            r#"
            network = "demo-net"
            host = "node-7"
            bridge = "br-int"
            ovsdb = "unix:/run/ovs/db.sock"
            docker_host = "unix:///run/docker.sock"
            os_cloud = "lab"
            openrc = "/etc/clampify/openrc"
            insecure = true
            port_active_timeout = 30
            concurrency = 4
            max_attempts = 3
            allowed_networks = ["demo-net"]
            allowed_projects = ["0123"]
            metrics_address = "127.0.0.1:9180"
            "#,
        )
        .unwrap();

        assert_eq!(config.network.as_deref(), Some("demo-net"));
        assert_eq!(config.host.as_deref(), Some("node-7"));
        assert_eq!(config.concurrency, Some(4));
        assert_eq!(config.allowed_networks, Some(vec!["demo-net".to_string()]));
        assert_eq!(
            config.metrics_address,
            Some("127.0.0.1:9180".parse().unwrap())
        );
    }

    #[test]
    fn parse_rejects_unknown_key() {
        let err = FileConfig::parse("netwrok = \"demo-net\"").unwrap_err();

        assert!(err.contains("unknown field `netwrok`"), "{err}");
    }

    #[test]
    fn load_missing_explicit_file_fails() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("clampify.toml");

        let err = FileConfig::load(Some(&missing)).unwrap_err();

        assert!(matches!(err, ConfigError::Read { .. }));
    }
}
