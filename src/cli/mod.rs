//! The commands. This is the only module that uses `anyhow` and prints.

pub mod args;
mod container;
mod netns;
mod output;
mod watch;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;

use clampify::attach::{Attacher, HostPlumbing};
use clampify::config::FileConfig;
use clampify::openstack::{CredentialOptions, Credentials, Neutron, Session};
use clampify::plumbing::OvsdbClient;

use args::{Cli, Command, GlobalArgs, WaitArgs};

/// Default integration bridge, as Nova, os-vif and OVN name it.
pub const DEFAULT_BRIDGE: &str = "br-int";
/// Default OVSDB endpoint of Debian's and Red Hat's Open vSwitch packages.
pub const DEFAULT_OVSDB: &str = "unix:/var/run/openvswitch/db.sock";
/// Default time to wait for a port to become ACTIVE.
pub const DEFAULT_ACTIVE_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings merged from flags, environment variables and the configuration file.
#[derive(Debug, Clone)]
pub struct Settings {
    pub file: FileConfig,
    pub host: String,
    pub bridge: String,
    pub ovsdb: String,
    pub docker_host: Option<String>,
    pub json: bool,
    credential_options: CredentialOptions,
}

impl Settings {
    fn new(global: &GlobalArgs) -> anyhow::Result<Self> {
        let file = FileConfig::load(global.config.as_deref())?;
        let host = match global.host.clone().or_else(|| file.host.clone()) {
            Some(host) => host,
            None => nix::unistd::gethostname()
                .context("read the host name for binding:host_id; pass --host")?
                .to_string_lossy()
                .into_owned(),
        };
        let credential_options = CredentialOptions {
            os_cloud: global.os_cloud.clone().or_else(|| file.os_cloud.clone()),
            openrc: global.openrc.clone().or_else(|| file.openrc.clone()),
            insecure: global.insecure || file.insecure.unwrap_or(false),
        };
        Ok(Self {
            host,
            bridge: global
                .bridge
                .clone()
                .or_else(|| file.bridge.clone())
                .unwrap_or_else(|| DEFAULT_BRIDGE.to_string()),
            ovsdb: global
                .ovsdb
                .clone()
                .or_else(|| file.ovsdb.clone())
                .unwrap_or_else(|| DEFAULT_OVSDB.to_string()),
            docker_host: global
                .docker_host
                .clone()
                .or_else(|| file.docker_host.clone()),
            json: global.json,
            credential_options,
            file,
        })
    }

    /// The wait for ACTIVE that `--timeout` and `--no-wait` ask for.
    pub fn wait(&self, args: &WaitArgs) -> Option<Duration> {
        if args.no_wait {
            return None;
        }
        let seconds = args.timeout.or(self.file.port_active_timeout);
        Some(
            seconds
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_ACTIVE_TIMEOUT),
        )
    }

    /// Authenticates with Keystone; the session keeps one token for every later call.
    pub fn neutron(&self) -> anyhow::Result<Neutron> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let credentials = Credentials::load(&self.credential_options, &env)
            .context("load OpenStack credentials")?;
        let session = Session::new(credentials).context("set up the OpenStack session")?;
        Ok(Neutron::new(session))
    }

    /// Connects to OVSDB and builds the attach workflow on it.
    pub async fn attacher(&self) -> anyhow::Result<Attacher<HostPlumbing>> {
        let neutron = self.neutron()?;
        let ovsdb = OvsdbClient::connect(&self.ovsdb)
            .await
            .with_context(|| format!("connect to OVSDB at {}", self.ovsdb))?;
        let plumbing = HostPlumbing::new(ovsdb, self.bridge.clone());
        Ok(Attacher::new(
            neutron,
            plumbing,
            self.host.clone(),
            self.bridge.clone(),
        ))
    }
}

/// Runs the command that `cli` names.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::new(&cli.global)?;
    match cli.command {
        Command::Create(args) => netns::create(&settings, args).await,
        Command::Delete(args) => netns::delete(&settings, args).await,
        Command::List => netns::list(&settings).await,
        Command::Insert(args) => container::insert(&settings, args).await,
        Command::Reinsert(args) => container::reinsert(&settings, args).await,
        Command::Watch(args) => watch::run(&settings, args).await,
    }
}

/// A one-line suggestion for the operator, shown under the error.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    for cause in err.chain() {
        let text = cause.to_string();
        if text.contains("Operation not permitted") || text.contains("EPERM") {
            return Some("clampify needs root, or CAP_NET_ADMIN and CAP_SYS_ADMIN".to_string());
        }
        if text.contains("No such file or directory") && text.contains("db.sock") {
            return Some("is ovsdb-server running? Pass --ovsdb with its socket".to_string());
        }
    }
    None
}
