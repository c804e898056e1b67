//! Clampify puts Docker containers and network namespaces on OpenStack Neutron networks.
//!
//! The crate is split by the system each module talks to:
//! - [`openstack`]: Keystone v3 authentication and the Neutron calls (HTTP only).
//! - [`plumbing`]: network namespaces, veth pairs over netlink, and Open vSwitch over OVSDB.
//! - [`docker`]: the Docker Engine API (containers and the event stream).
//! - [`attach`]: the workflows that combine them: plug a port into a netns and unplug it.
//! - [`agent`]: the `clampify watch` loop that attaches containers as Docker starts them.

pub mod agent;
pub mod attach;
pub mod config;
pub mod docker;
pub mod openstack;
pub mod plumbing;
