//! Derives the container-side interface settings from a Neutron port and its subnets.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::openstack::{Port, Subnet};
use crate::plumbing::{InterfaceConfig, MacAddr, Route};

/// Errors in the data Neutron returned for a port.
#[derive(Debug, thiserror::Error)]
pub enum PortDataError {
    #[error("port {port} has MAC address {mac:?}, which is not a valid MAC address")]
    InvalidMac { port: String, mac: String },

    #[error("port {port} has fixed IP {ip} on subnet {subnet}, which Neutron did not return for its network")]
    UnknownSubnet {
        port: String,
        ip: IpAddr,
        subnet: String,
    },
}

/// Builds the settings of the interface named `ifname` inside the namespace.
///
/// Every fixed IP gets its subnet's prefix length. Each subnet that holds one of the port's
/// addresses adds its host routes, and with `default_routes` a default route via its gateway.
/// Only the first gateway of each IP version becomes a default route, because the kernel
/// accepts one default route per table and family.
pub fn interface_config(
    port: &Port,
    subnets: &[Subnet],
    ifname: &str,
    mtu: u32,
    disable_tx_checksum: bool,
    default_routes: bool,
) -> Result<InterfaceConfig, PortDataError> {
    let mac: MacAddr = port
        .mac_address
        .parse()
        .map_err(|_| PortDataError::InvalidMac {
            port: port.id.clone(),
            mac: port.mac_address.clone(),
        })?;

    let mut addresses = Vec::new();
    let mut routes = Vec::new();
    let mut default_v4 = false;
    let mut default_v6 = false;
    for fixed in &port.fixed_ips {
        let subnet = subnets
            .iter()
            .find(|s| s.id == fixed.subnet_id)
            .ok_or_else(|| PortDataError::UnknownSubnet {
                port: port.id.clone(),
                ip: fixed.ip_address,
                subnet: fixed.subnet_id.clone(),
            })?;
        let address = IpNet::new(fixed.ip_address, subnet.cidr.prefix_len()).map_err(|_| {
            PortDataError::UnknownSubnet {
                port: port.id.clone(),
                ip: fixed.ip_address,
                subnet: fixed.subnet_id.clone(),
            }
        })?;
        addresses.push(address);

        if let Some(gateway) = subnet.gateway_ip.filter(|_| default_routes) {
            let first = match gateway {
                IpAddr::V4(_) => !std::mem::replace(&mut default_v4, true),
                IpAddr::V6(_) => !std::mem::replace(&mut default_v6, true),
            };
            if first {
                routes.push(Route {
                    destination: default_destination(gateway),
                    gateway: Some(gateway),
                });
            }
        }
        for host_route in &subnet.host_routes {
            let route = Route {
                destination: host_route.destination,
                gateway: Some(host_route.nexthop),
            };
            if !routes.contains(&route) {
                routes.push(route);
            }
        }
    }

    Ok(InterfaceConfig {
        name: ifname.to_string(),
        mac,
        mtu,
        addresses,
        routes,
        disable_tx_checksum,
    })
}

fn default_destination(gateway: IpAddr) -> IpNet {
    match gateway {
        IpAddr::V4(_) => IpNet::V4(ipnet::Ipv4Net::default()),
        IpAddr::V6(_) => IpNet::V6(ipnet::Ipv6Net::default()),
    }
}
