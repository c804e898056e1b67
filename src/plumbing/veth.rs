//! Plugging a veth pair between the host and a network namespace.

use std::fs::File;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::future::try_join_all;
use ipnet::IpNet;
use rtnetlink::packet_route::address::AddressHeaderFlags;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::packet_route::route::{RouteMessage, RouteScope};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::error::netlink_cause;
use super::ethtool;
use super::link::{validate_ifname, InterfaceConfig, Route};
use super::netns::{write_sysctl, Netns};
use super::rtnl::Rtnl;
use super::PlumbingError;

/// Creates a veth pair with `host_ifname` in the namespace of this process and `iface.name`
/// inside `netns`, then configures the inside end: loopback up, addresses, TX checksum
/// offload off if asked, link up, routes. Both ends get `iface.mtu`; the host end is up.
///
/// The inside end is created in `netns` directly, already named and with its MAC and MTU,
/// because moving a link between namespaces costs 15–20 ms of kernel RCU synchronisation.
/// If a step after the creation fails, the pair is deleted before the error is returned.
/// The host end is not attached to any bridge; see [`crate::plumbing::ovsdb`].
pub async fn plug_veth(
    netns: &Netns,
    host_ifname: &str,
    iface: &InterfaceConfig,
) -> Result<(), PlumbingError> {
    plug_veth_in(None, netns, host_ifname, iface).await
}

/// Like [`plug_veth`], with the host end in `host_netns`, or in the namespace of this process
/// when `None` (a simulated host runs its agent inside a namespace).
pub async fn plug_veth_in(
    host_netns: Option<&Netns>,
    netns: &Netns,
    host_ifname: &str,
    iface: &InterfaceConfig,
) -> Result<(), PlumbingError> {
    plug(host_netns, netns, host_ifname, iface, async { Ok(()) }).await
}

/// Like [`plug_veth`], and runs `alongside` as soon as the host end exists, while the inside
/// end is being configured. Putting the host end on a bridge this way overlaps the wait for
/// ovs-vswitchd with the netlink requests.
///
/// Both halves run to completion even if one fails, so that `alongside` is never cut off
/// half-way. On any failure the pair is deleted. Undoing what `alongside` did is left to the
/// caller, because only the caller can tell how far it got.
pub async fn plug_veth_with<T>(
    netns: &Netns,
    host_ifname: &str,
    iface: &InterfaceConfig,
    alongside: impl Future<Output = Result<T, PlumbingError>>,
) -> Result<T, PlumbingError> {
    plug(None, netns, host_ifname, iface, alongside).await
}

async fn plug<T>(
    host_netns: Option<&Netns>,
    netns: &Netns,
    host_ifname: &str,
    iface: &InterfaceConfig,
    alongside: impl Future<Output = Result<T, PlumbingError>>,
) -> Result<T, PlumbingError> {
    let started = Instant::now();
    validate_ifname(host_ifname)?;
    iface.validate()?;

    // Both connections are opened before anything is created, so a namespace that cannot be
    // entered fails the plug without leaving a half-built pair.
    let target = netns.open()?;
    let want_ethtool = iface.disable_tx_checksum.then(|| netns.path().to_owned());
    let (host, (inside, ethtool_socket)) = tokio::try_join!(
        Rtnl::open(host_netns),
        Rtnl::open_with(Some(netns), move || open_ethtool_socket(want_ethtool)),
    )?;

    create_veth(&host, &target, netns, host_ifname, iface).await?;
    let (configured, outcome) = tokio::join!(
        configure_inside(&inside, ethtool_socket.as_ref(), netns, iface),
        alongside,
    );
    if let (Err(error), _) | (Ok(()), Err(error)) = (&configured, &outcome) {
        remove_after_failure(&host, host_ifname, error).await;
    }
    configured?;
    let outcome = outcome?;

    tracing::debug!(
        netns = %netns,
        host_ifname,
        ifname = %iface.name,
        mac = %iface.mac,
        elapsed = ?started.elapsed(),
        "veth plugged"
    );
    Ok(outcome)
}

/// Opens the ethtool socket when `netns` is given; runs on the thread inside that namespace.
fn open_ethtool_socket(netns: Option<PathBuf>) -> Result<Option<OwnedFd>, PlumbingError> {
    let Some(netns) = netns else {
        return Ok(None);
    };
    match ethtool::control_socket() {
        Ok(socket) => Ok(Some(socket)),
        Err(source) => Err(PlumbingError::OpenEthtoolSocket { netns, source }),
    }
}

async fn create_veth(
    host: &Rtnl,
    target: &File,
    netns: &Netns,
    host_ifname: &str,
    iface: &InterfaceConfig,
) -> Result<(), PlumbingError> {
    // IFLA_NET_NS_FD inside the peer's attributes makes the kernel create the peer in that
    // namespace (veth_newlink in drivers/net/veth.c).
    let peer = LinkUnspec::new_with_name(&iface.name)
        .address(iface.mac.octets().to_vec())
        .mtu(iface.mtu)
        .setns_by_fd(target.as_raw_fd())
        .build();
    let message = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(host_ifname.to_owned())
        .mtu(iface.mtu)
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();

    host.handle()
        .link()
        .add(message)
        .execute()
        .await
        .map_err(|error| PlumbingError::CreateVeth {
            host_ifname: host_ifname.to_owned(),
            ifname: iface.name.clone(),
            netns: netns.path().to_owned(),
            source: netlink_cause(error),
        })
}

/// Configures the inside end. Requests that do not need each other's replies are sent back to
/// back on the one socket, so the plug waits for one round trip per group, not per request.
/// The kernel handles a netlink socket's requests in the order they were sent.
async fn configure_inside(
    inside: &Rtnl,
    ethtool_socket: Option<&OwnedFd>,
    netns: &Netns,
    iface: &InterfaceConfig,
) -> Result<(), PlumbingError> {
    let path = netns.path().to_owned();

    // Docker 20.10 creates `--network none` namespaces with IPv6 disabled on every interface
    // (net.ipv6.conf.default.disable_ipv6=1), and the kernel rejects IPv6 addresses on such an
    // interface with EACCES. Enabling IPv6 on this interface alone leaves the rest as it was.
    let enable_ipv6 = async {
        if iface
            .addresses
            .iter()
            .any(|address| address.addr().is_ipv6())
        {
            let key = format!("net/ipv6/conf/{}/disable_ipv6", iface.name);
            write_sysctl(netns, &key, "0").await?;
        }
        Ok(())
    };
    let ((), (), index) = tokio::try_join!(
        enable_ipv6,
        inside.set_up("lo"),
        inside.link_index(&iface.name),
    )?;
    let index = index.ok_or_else(|| PlumbingError::FindLink {
        ifname: iface.name.clone(),
        netns: Some(path.clone()),
        source: io::Error::from(io::ErrorKind::NotFound),
    })?;

    try_join_all(
        iface
            .addresses
            .iter()
            .map(|address| add_address(inside, index, *address, &iface.name, &path)),
    )
    .await?;

    // Before the link goes up, so that no packet leaves with an unfinished checksum.
    if let Some(socket) = ethtool_socket {
        ethtool::disable_tx_checksum(socket.as_fd(), &iface.name).map_err(|source| {
            PlumbingError::DisableTxChecksum {
                ifname: iface.name.clone(),
                netns: path.clone(),
                source,
            }
        })?;
    }

    // Routes through a gateway need the link up, or the kernel rejects them with ENETDOWN.
    // The link-up request is sent first, so it is handled first.
    let routes = iface
        .routes
        .iter()
        .map(|route| add_route(inside, index, route, &iface.name, &path));
    let ((), _) = tokio::try_join!(inside.set_up(&iface.name), try_join_all(routes))?;
    Ok(())
}

async fn add_address(
    inside: &Rtnl,
    index: u32,
    address: IpNet,
    ifname: &str,
    netns: &Path,
) -> Result<(), PlumbingError> {
    let mut request = inside
        .handle()
        .address()
        .add(index, address.addr(), address.prefix_len());
    if address.addr().is_ipv6() {
        // Without IFA_F_NODAD the address stays tentative, unusable, for the 1–2 s of
        // duplicate address detection; Neutron already guarantees it is unique.
        request.message_mut().header.flags |= AddressHeaderFlags::Nodad;
    }
    request
        .execute()
        .await
        .map_err(|error| PlumbingError::AddAddress {
            address,
            ifname: ifname.to_owned(),
            netns: netns.to_owned(),
            source: netlink_cause(error),
        })
}

async fn add_route(
    inside: &Rtnl,
    index: u32,
    route: &Route,
    ifname: &str,
    netns: &Path,
) -> Result<(), PlumbingError> {
    let message = route_message(route, index);
    inside
        .handle()
        .route()
        .add(message)
        .execute()
        .await
        .map_err(|error| PlumbingError::AddRoute {
            route: route.to_string(),
            ifname: ifname.to_owned(),
            netns: netns.to_owned(),
            source: netlink_cause(error),
        })
}

/// Builds the RTM_NEWROUTE message for `route` through interface `index`, in the main table.
/// A route without a gateway gets link scope, as `ip route add PREFIX dev IFNAME` gives it.
fn route_message(route: &Route, index: u32) -> RouteMessage {
    let on_link_scope = if route.gateway.is_none() {
        RouteScope::Link
    } else {
        RouteScope::Universe
    };
    match (route.destination, route.gateway) {
        (IpNet::V4(destination), gateway) => {
            let mut builder = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(destination.addr(), destination.prefix_len())
                .output_interface(index)
                .scope(on_link_scope);
            if let Some(std::net::IpAddr::V4(gateway)) = gateway {
                builder = builder.gateway(gateway);
            }
            builder.build()
        }
        (IpNet::V6(destination), gateway) => {
            // IPv6 routes always have universe scope.
            let mut builder = RouteMessageBuilder::<Ipv6Addr>::new()
                .destination_prefix(destination.addr(), destination.prefix_len())
                .output_interface(index);
            if let Some(std::net::IpAddr::V6(gateway)) = gateway {
                builder = builder.gateway(gateway);
            }
            builder.build()
        }
    }
}

/// Deletes the pair after a failed configuration step. A failure here is logged, not
/// returned, because the caller needs the error that stopped the plug.
async fn remove_after_failure(host: &Rtnl, host_ifname: &str, cause: &PlumbingError) {
    match host.delete_link(host_ifname).await {
        Ok(_) => tracing::debug!(host_ifname, error = %cause, "veth removed after failed plug"),
        Err(error) => tracing::warn!(
            host_ifname,
            error = %error,
            plug_error = %cause,
            "could not remove veth after failed plug; it is left behind"
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};

    use super::*;

    fn gateway_of(message: &RouteMessage) -> Option<RouteAddress> {
        message
            .attributes
            .iter()
            .find_map(|attribute| match attribute {
                RouteAttribute::Gateway(address) => Some(address.clone()),
                _ => None,
            })
    }

    #[test]
    fn default_route_goes_via_gateway() {
        let route = Route {
            destination: "0.0.0.0/0".parse().unwrap(),
            gateway: Some("198.51.100.1".parse().unwrap()),
        };
        let message = route_message(&route, 7);
        assert_eq!(message.header.destination_prefix_length, 0);
        assert_eq!(message.header.scope, RouteScope::Universe);
        assert_eq!(
            gateway_of(&message),
            Some(RouteAddress::Inet("198.51.100.1".parse().unwrap()))
        );
        assert!(message.attributes.contains(&RouteAttribute::Oif(7)));
    }

    #[test]
    fn on_link_route_has_link_scope() {
        let route = Route {
            destination: "203.0.113.0/24".parse().unwrap(),
            gateway: None,
        };
        let message = route_message(&route, 7);
        assert_eq!(message.header.destination_prefix_length, 24);
        assert_eq!(message.header.scope, RouteScope::Link);
        assert_eq!(gateway_of(&message), None);
    }

    #[test]
    fn ipv6_route_keeps_universe_scope() {
        let route = Route {
            destination: "::/0".parse().unwrap(),
            gateway: Some("2001:db8::1".parse().unwrap()),
        };
        let message = route_message(&route, 3);
        assert_eq!(message.header.scope, RouteScope::Universe);
        assert_eq!(
            gateway_of(&message),
            Some(RouteAddress::Inet6("2001:db8::1".parse().unwrap()))
        );
    }
}
