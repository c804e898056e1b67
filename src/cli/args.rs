//! Command-line arguments. The `///` comments are the `--help` text.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Put Docker containers and network namespaces on OpenStack Neutron networks.
///
/// Each attachment is a Neutron port bound to this host (`binding:host_id`), plugged into the
/// Open vSwitch integration bridge as a veth pair whose other end is configured inside the
/// namespace with the port's MAC, fixed IPs, the network's MTU and the subnets' routes.
/// Neutron is the source of truth: Clampify keeps no local state.
///
/// Credentials, highest precedence first: `--openrc FILE`, the `OS_*` environment
/// variables, the cloud named by `--os-cloud`/`OS_CLOUD` in clouds.yaml (secure.yaml merged
/// over it), as python-openstackclient applies them. With none of these, `~/openrc` is read.
#[derive(Debug, Parser)]
#[command(name = "clampify", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML configuration file [default: /etc/clampify/clampify.toml when it exists].
    #[arg(long, env = "CLAMPIFY_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Cloud to use from clouds.yaml.
    #[arg(long, env = "OS_CLOUD", global = true, value_name = "NAME")]
    pub os_cloud: Option<String>,

    /// Shell file of `export OS_...=` lines, read without running a shell.
    #[arg(long, global = true, value_name = "FILE")]
    pub openrc: Option<PathBuf>,

    /// Skip TLS certificate verification towards Keystone and Neutron.
    #[arg(long, global = true)]
    pub insecure: bool,

    /// Neutron `binding:host_id` of this host: its OVN chassis name or OVS agent host
    /// [default: the host name].
    #[arg(long, env = "CLAMPIFY_HOST", global = true, value_name = "HOST_ID")]
    pub host: Option<String>,

    /// Open vSwitch integration bridge [default: br-int].
    #[arg(long, env = "CLAMPIFY_BRIDGE", global = true, value_name = "BRIDGE")]
    pub bridge: Option<String>,

    /// OVSDB endpoint [default: unix:/var/run/openvswitch/db.sock].
    #[arg(long, env = "CLAMPIFY_OVSDB", global = true, value_name = "ENDPOINT")]
    pub ovsdb: Option<String>,

    /// Docker Engine endpoint [default: unix:///var/run/docker.sock].
    #[arg(long, env = "DOCKER_HOST", global = true, value_name = "ENDPOINT")]
    pub docker_host: Option<String>,

    /// Print results and errors as JSON.
    #[arg(long, global = true)]
    pub json: bool,

    /// Log filter, in tracing's `RUST_LOG` syntax [default: warn for commands, info for watch].
    #[arg(long, env = "CLAMPIFY_LOG", global = true, value_name = "FILTER")]
    pub log: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a port on NETWORK and plug it into the named network namespace NETNS.
    ///
    /// The namespace is created when missing (it is visible to `ip netns`). The command waits
    /// until Neutron reports the port ACTIVE, then prints its IP addresses and ID.
    Create(CreateArgs),

    /// Unplug port PORT_ID from NETNS and delete it.
    ///
    /// Removes the OVS port, the veth pair and the namespace when `create` made it. A port
    /// adopted with `create --port` is unbound and kept. Deleting what is already gone
    /// succeeds. For a port of a container (from `insert` or the agent), give the container
    /// instead of NETNS. While an agent runs, its next reconcile gives a running container
    /// a new port: stop or remove the container, or label it `clampify.disable=true`.
    Delete(DeleteArgs),

    /// List the Clampify ports bound to this host, with their namespace and local state.
    List,

    /// Create a port on NETWORK and plug it into the running CONTAINER.
    ///
    /// The port's `device_id` is the container's ID. When the container already has a
    /// Clampify port on NETWORK, that port is reused, so a repeated insert is harmless.
    Insert(InsertArgs),

    /// Plug the existing port PORT_ID into CONTAINER again, after a restart.
    ///
    /// The container gets the same MAC and IP addresses as before. When IP is given and is
    /// not one of the port's fixed IPs, nothing is changed.
    Reinsert(ReinsertArgs),

    /// Run the per-host agent: attach every container Docker starts to its Neutron networks.
    ///
    /// A container's ports are created when Docker creates the container and plugged when it
    /// starts. A container joins the networks in its `clampify.networks` label
    /// (comma-separated names or UUIDs), or else NETWORK. `clampify.disable=true` and `host` or
    /// `container:` network modes are left alone. `clampify.ips` asks for fixed IPs and
    /// `clampify.security-groups` for security groups. Ports survive container restarts
    /// and are deleted when the container is removed. On start and after every reconnect
    /// of the event stream the agent reconciles Docker, Neutron and OVS.
    Watch(WatchArgs),
}

/// Options of the commands that create or adopt a port.
#[derive(Debug, Args)]
pub struct PortArgs {
    /// Fixed IP to request; each address goes to the subnet that contains it. Repeatable.
    #[arg(long = "ip", value_name = "ADDR")]
    pub ips: Vec<IpAddr>,

    /// Security group (name or ID) for the port. Repeatable.
    #[arg(long = "security-group", value_name = "NAME_OR_ID")]
    pub security_groups: Vec<String>,

    #[command(flatten)]
    pub wait: WaitArgs,
}

/// How long to wait for the port to become ACTIVE.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Seconds to wait for the port to become ACTIVE [default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,

    /// Return once the port is plugged, without waiting for ACTIVE.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Network name or UUID.
    pub network: String,

    /// Name of the network namespace (as in `ip netns`).
    pub netns: String,

    /// Adopt this existing unbound port instead of creating one.
    #[arg(long = "port", value_name = "PORT_ID")]
    pub port: Option<String>,

    #[command(flatten)]
    pub port_args: PortArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// ID of the port to unplug.
    pub port: String,

    /// Name of the network namespace the port is plugged into, or the container's name or ID.
    pub netns: String,
}

#[derive(Debug, Args)]
pub struct InsertArgs {
    /// Network name or UUID.
    pub network: String,

    /// Container name, ID or unique ID prefix.
    pub container: String,

    #[command(flatten)]
    pub port_args: PortArgs,
}

#[derive(Debug, Args)]
pub struct ReinsertArgs {
    /// Container name, ID or unique ID prefix.
    pub container: String,

    /// ID of the port to plug in again.
    pub port: String,

    /// Expected fixed IP of the port; the command fails when the port does not have it.
    pub ip: Option<IpAddr>,

    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Network (name or UUID) for containers without a `clampify.networks` label.
    pub network: Option<String>,

    /// Containers worked on at the same time [default: 8].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Attempts per container event before the agent gives up on it [default: 5].
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,

    /// Spare ports to keep bound to this host on NETWORK [default: 0]. A new container on
    /// NETWORK without `clampify.ips` or `clampify.security-groups` takes one, which saves
    /// it the port create. Each spare uses an IP address; the agent deletes its spares
    /// when it stops.
    #[arg(long, value_name = "N")]
    pub spare_ports: Option<usize>,

    /// Seconds to wait for a port to become ACTIVE [default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,

    /// Network a label may name (name or UUID). Repeatable. With neither this nor
    /// `--allowed-project`, a label may name any network the agent can see.
    #[arg(long = "allowed-network", value_name = "NAME_OR_ID")]
    pub allowed_networks: Vec<String>,

    /// Project (ID) whose networks a label may name. Repeatable.
    #[arg(long = "allowed-project", value_name = "PROJECT_ID")]
    pub allowed_projects: Vec<String>,

    /// Serve Prometheus `/metrics` and `/healthz` on this address, e.g. 127.0.0.1:9180
    /// [default: off].
    #[arg(long, value_name = "ADDR")]
    pub metrics_address: Option<SocketAddr>,
}
