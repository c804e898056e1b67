//! Everything that touches the kernel or Open vSwitch on this host: network namespaces, veth
//! pairs, addresses and routes over rtnetlink, TX checksum offload over ethtool, and ports
//! over OVSDB. No HTTP, and no `ip` or `ovs-vsctl` processes.
//!
//! Plugging a Neutron port into a namespace takes two parts:
//! [`plug_veth`] builds the veth pair, with the inside end already configured, and
//! [`OvsdbClient::add_port`] puts the host end on the integration bridge with the port's
//! `external_ids`. [`plug_veth_with`] runs the second while the first configures the inside
//! end.
//!
//! Operations that act inside another namespace run a short-lived thread there
//! ([`netns::in_netns`]) only long enough to open a socket, which then keeps acting in that
//! namespace from any thread.

mod error;
mod ethtool;
pub mod link;
pub mod netns;
pub mod ovsdb;
mod resolv;
mod rtnl;
mod veth;

pub use error::PlumbingError;
pub use link::{
    delete_link, delete_link_in, host_ifname, link_exists, link_exists_in, next_free_ifname,
    InterfaceConfig, MacAddr, Route,
};
pub use netns::{delete_named, ensure_named, in_netns, in_netns_async, write_sysctl, Netns};
pub use ovsdb::{OvsInterface, OvsdbClient};
pub use resolv::write_resolv_conf;
pub use veth::{plug_veth, plug_veth_in, plug_veth_with};
