//! Interface names, the interface configuration that a plug applies, and link queries.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use super::netns::Netns;
use super::rtnl::Rtnl;
use super::PlumbingError;

/// Maximum length of an interface name the kernel accepts: IFNAMSIZ (16) minus the NUL.
pub const MAX_IFNAME_LEN: usize = 15;

/// Returns the host-side interface name of a Neutron port: `tap` plus the first 11 characters of the
/// port id, the convention of Nova and Neutron that operators and agents expect. A UUID
/// gives 14 bytes, within the kernel's 15-byte limit.
pub fn host_ifname(port_id: &str) -> String {
    let prefix: String = port_id.chars().take(11).collect();
    format!("tap{prefix}")
}

/// Rejects names the kernel rejects (`dev_valid_name` in net/core/dev.c): empty, longer than
/// 15 bytes, `.` or `..`, or containing `/`, `:` or whitespace.
pub fn validate_ifname(name: &str) -> Result<(), PlumbingError> {
    let reason = if name.is_empty() {
        "the name is empty"
    } else if name.len() > MAX_IFNAME_LEN {
        "the name is longer than 15 bytes"
    } else if name == "." || name == ".." {
        "the name is '.' or '..'"
    } else if name.contains(['/', ':', '\0']) || name.chars().any(char::is_whitespace) {
        "the name contains '/', ':', NUL or whitespace"
    } else {
        return Ok(());
    };
    Err(PlumbingError::InvalidIfname {
        name: name.to_owned(),
        reason,
    })
}

/// An Ethernet MAC address, written and parsed as `fa:16:3e:12:34:56`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// The error of parsing a [`MacAddr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: expected six hexadecimal octets separated by ':'")]
pub struct ParseMacAddrError(String);

impl FromStr for MacAddr {
    type Err = ParseMacAddrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || ParseMacAddrError(text.to_owned());
        let mut octets = [0u8; 6];
        let mut parts = text.split(':');
        for octet in &mut octets {
            let part = parts.next().ok_or_else(invalid)?;
            if part.len() != 2 {
                return Err(invalid());
            }
            *octet = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
        }
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(Self(octets))
    }
}

/// A route to install inside the namespace, through the plugged interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `0.0.0.0/0` or `::/0` for a default route. Host bits must be zero.
    pub destination: IpNet,
    /// Next hop; `None` for a route to a directly attached network.
    pub gateway: Option<IpAddr>,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.gateway {
            Some(gateway) => write!(f, "{} via {gateway}", self.destination),
            None => self.destination.fmt(f),
        }
    }
}

/// The interface a plug creates inside the namespace and what it configures on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// Name inside the namespace, such as `eth0`.
    pub name: String,
    /// The Neutron port's MAC address.
    pub mac: MacAddr,
    /// Applied to both ends of the veth. Take it from the Neutron network (1442 on geneve).
    pub mtu: u32,
    /// Addresses with their prefix length, such as `198.51.100.5/24` or `2001:db8::5/64`.
    pub addresses: Vec<IpNet>,
    /// Installed in order after the interface is up.
    pub routes: Vec<Route>,
    /// Turns TX checksum offload off inside the namespace. Needed when Open vSwitch uses the
    /// userspace (netdev) datapath: it reads the veth through AF_PACKET without the offload
    /// metadata and forwards TCP and UDP packets with unfinished checksums, so ping works
    /// and TCP does not.
    pub disable_tx_checksum: bool,
}

impl InterfaceConfig {
    /// Checks what the kernel would otherwise reject with a bare EINVAL or ERANGE.
    pub fn validate(&self) -> Result<(), PlumbingError> {
        validate_ifname(&self.name)?;
        let invalid = |reason: String| PlumbingError::InvalidInterfaceConfig {
            ifname: self.name.clone(),
            reason,
        };
        if self.mtu < 68 {
            return Err(invalid(format!(
                "MTU {} is below 68, the IPv4 minimum",
                self.mtu
            )));
        }
        for route in &self.routes {
            if route.destination.trunc() != route.destination {
                return Err(invalid(format!(
                    "route destination {} has host bits set",
                    route.destination
                )));
            }
            if let Some(gateway) = route.gateway {
                if gateway.is_ipv4() != route.destination.addr().is_ipv4() {
                    return Err(invalid(format!("route {route} mixes IPv4 and IPv6")));
                }
            }
        }
        Ok(())
    }
}

/// Deletes interface `name` in the namespace of this process; returns false when it did
/// not exist. For a veth, this also deletes the peer, which costs 15–20 ms of kernel RCU
/// synchronisation when the peer is in another namespace.
pub async fn delete_link(name: &str) -> Result<bool, PlumbingError> {
    delete_link_in(None, name).await
}

/// Like [`delete_link`], in `netns`, or in the namespace of this process when `None`.
pub async fn delete_link_in(netns: Option<&Netns>, name: &str) -> Result<bool, PlumbingError> {
    validate_ifname(name)?;
    Rtnl::open(netns).await?.delete_link(name).await
}

/// Tells whether interface `name` exists in the namespace of this process.
pub async fn link_exists(name: &str) -> Result<bool, PlumbingError> {
    link_exists_in(None, name).await
}

/// Like [`link_exists`], in `netns`, or in the namespace of this process when `None`.
pub async fn link_exists_in(netns: Option<&Netns>, name: &str) -> Result<bool, PlumbingError> {
    validate_ifname(name)?;
    Ok(Rtnl::open(netns).await?.link_index(name).await?.is_some())
}

/// Returns `eth0`, or the `ethN` with the lowest N that no interface in `netns` uses. The name
/// is only free at the time of the call: two concurrent callers can get the same one.
pub async fn next_free_ifname(netns: &Netns) -> Result<String, PlumbingError> {
    let names = Rtnl::open(Some(netns)).await?.link_names().await?;
    first_free_ifname(&names).ok_or_else(|| PlumbingError::NoFreeIfname {
        netns: netns.path().to_owned(),
    })
}

fn first_free_ifname(used: &[String]) -> Option<String> {
    // Among len + 1 candidates at least one is free.
    (0..=used.len())
        .map(|n| format!("eth{n}"))
        .find(|candidate| !used.contains(candidate))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config() -> InterfaceConfig {
        InterfaceConfig {
            name: "eth0".into(),
            mac: MacAddr([0xfa, 0x16, 0x3e, 0, 0, 1]),
            mtu: 1442,
            addresses: vec!["198.51.100.5/24".parse().unwrap()],
            routes: vec![Route {
                destination: "0.0.0.0/0".parse().unwrap(),
                gateway: Some("198.51.100.1".parse().unwrap()),
            }],
            disable_tx_checksum: true,
        }
    }

    #[test]
    fn host_ifname_follows_nova_convention() {
        assert_eq!(
            host_ifname("4312b826-10e5-4b00-9729-cbcf4a52a225"),
            "tap4312b826-10"
        );
        assert_eq!(
            host_ifname("4312b826-10e5-4b00-9729-cbcf4a52a225").len(),
            14
        );
    }

    #[test]
    fn host_ifname_of_short_id() {
        assert_eq!(host_ifname("abc"), "tapabc");
    }

    #[test]
    fn ifnames_rejected_like_kernel() {
        for name in [
            "",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "sixteen-bytes-xx",
        ] {
            assert!(validate_ifname(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn ifnames_accepted_like_kernel() {
        for name in ["eth0", "tap4312b826-10", "fifteen-bytes-x", "a.b", "..."] {
            assert!(validate_ifname(name).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn mac_round_trip() {
        let mac: MacAddr = "FA:16:3e:d8:1c:8f".parse().unwrap();
        assert_eq!(mac.octets(), [0xfa, 0x16, 0x3e, 0xd8, 0x1c, 0x8f]);
        assert_eq!(mac.to_string(), "fa:16:3e:d8:1c:8f");
    }

    #[test]
    fn malformed_macs_rejected() {
        for text in [
            "",
            "fa:16:3e:d8:1c",
            "fa:16:3e:d8:1c:8f:00",
            "fa-16-3e-d8-1c-8f",
            "f:16:3e:d8:1c:8f",
            "zz:16:3e:d8:1c:8f",
        ] {
            assert!(text.parse::<MacAddr>().is_err(), "{text:?}");
        }
    }

    #[test]
    fn valid_config_accepted() {
        assert!(config().validate().is_ok());
    }

    #[test]
    fn route_with_host_bits_rejected() {
        let mut config = config();
        config.routes[0].destination = "203.0.113.7/24".parse().unwrap();
        let error = config.validate().unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid configuration for interface eth0: route destination 203.0.113.7/24 has host bits set"
        );
    }

    #[test]
    fn route_mixing_families_rejected() {
        let mut config = config();
        config.routes[0].gateway = Some("2001:db8::1".parse().unwrap());
        assert!(config.validate().is_err());
    }

    #[test]
    fn tiny_mtu_rejected() {
        let mut config = config();
        config.mtu = 60;
        assert!(config.validate().is_err());
    }

    #[test]
    fn route_display() {
        assert_eq!(config().routes[0].to_string(), "0.0.0.0/0 via 198.51.100.1");
    }

    #[test]
    fn first_free_ifname_fills_gaps() {
        let used = |names: &[&str]| {
            names
                .iter()
                .map(|name| name.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(first_free_ifname(&used(&["lo"])).unwrap(), "eth0");
        assert_eq!(
            first_free_ifname(&used(&["lo", "eth0", "eth2"])).unwrap(),
            "eth1"
        );
        assert_eq!(first_free_ifname(&used(&["eth0", "eth1"])).unwrap(), "eth2");
        assert_eq!(first_free_ifname(&[]).unwrap(), "eth0");
    }
}
