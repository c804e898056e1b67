//! The error type of the plumbing module.

use std::io;
use std::path::PathBuf;

use super::ovsdb::{OvsdbError, OvsdbOperation};

/// A failed plumbing step. Each variant names the operation and carries the namespace path,
/// interface name or bridge involved. The OS or OVSDB cause, when there is one, is the `source`.
#[derive(Debug, thiserror::Error)]
pub enum PlumbingError {
    #[error("invalid network namespace name {name:?}: {reason}")]
    InvalidNetnsName { name: String, reason: &'static str },

    #[error("invalid interface name {name:?}: {reason}")]
    InvalidIfname { name: String, reason: &'static str },

    /// The request contradicts itself, for example a route whose gateway is of another family.
    #[error("invalid configuration for interface {ifname}: {reason}")]
    InvalidInterfaceConfig { ifname: String, reason: String },

    #[error("invalid sysctl key {key:?}: {reason}")]
    InvalidSysctlKey { key: String, reason: &'static str },

    #[error("open network namespace {path}")]
    OpenNetns {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("enter network namespace {path}")]
    EnterNetns {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("start a thread to enter network namespace {path}")]
    SpawnNetnsThread {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("thread working in network namespace {path} panicked")]
    NetnsThreadPanicked { path: PathBuf },

    /// `step` is the part of the `ip netns add` procedure that failed.
    #[error("create network namespace {name}: {step}")]
    CreateNetns {
        name: String,
        step: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("delete network namespace {name}: {step}")]
    DeleteNetns {
        name: String,
        step: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("write sysctl {key} in network namespace {netns}")]
    WriteSysctl {
        netns: PathBuf,
        key: String,
        #[source]
        source: io::Error,
    },

    /// `netns` is `None` for the namespace the calling process runs in.
    #[error("open a netlink socket in {}", display_netns(.netns))]
    OpenNetlink {
        netns: Option<PathBuf>,
        #[source]
        source: io::Error,
    },

    #[error("open a socket for ethtool requests in network namespace {netns}")]
    OpenEthtoolSocket {
        netns: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("create veth {host_ifname} with peer {ifname} in network namespace {netns}")]
    CreateVeth {
        host_ifname: String,
        ifname: String,
        netns: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("find interface {ifname} in {}", display_netns(.netns))]
    FindLink {
        ifname: String,
        netns: Option<PathBuf>,
        #[source]
        source: io::Error,
    },

    #[error("list interfaces in {}", display_netns(.netns))]
    ListLinks {
        netns: Option<PathBuf>,
        #[source]
        source: io::Error,
    },

    #[error("set interface {ifname} up in {}", display_netns(.netns))]
    SetLinkUp {
        ifname: String,
        netns: Option<PathBuf>,
        #[source]
        source: io::Error,
    },

    #[error("add address {address} to {ifname} in network namespace {netns}")]
    AddAddress {
        address: ipnet::IpNet,
        ifname: String,
        netns: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("add route {route} via {ifname} in network namespace {netns}")]
    AddRoute {
        route: String,
        ifname: String,
        netns: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("turn off TX checksum offload on {ifname} in network namespace {netns}")]
    DisableTxChecksum {
        ifname: String,
        netns: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("delete interface {ifname} in {}", display_netns(.netns))]
    DeleteLink {
        ifname: String,
        netns: Option<PathBuf>,
        #[source]
        source: io::Error,
    },

    #[error("no free ethN interface name in network namespace {netns}")]
    NoFreeIfname { netns: PathBuf },

    /// The socket file is missing, or no process listens on it.
    #[error("connect to OVSDB failed, is ovsdb-server running? (endpoint {endpoint})")]
    OvsdbUnreachable {
        endpoint: String,
        #[source]
        source: io::Error,
    },

    #[error("connect to OVSDB (endpoint {endpoint})")]
    OvsdbConnect {
        endpoint: String,
        #[source]
        source: io::Error,
    },

    #[error("unsupported OVSDB endpoint {endpoint:?}: use unix:PATH or a socket path")]
    UnsupportedOvsdbEndpoint { endpoint: String },

    #[error("{op}")]
    Ovsdb {
        op: OvsdbOperation,
        #[source]
        source: Box<OvsdbError>,
    },
}

impl PlumbingError {
    /// Tells whether the kernel or a socket rejected the step for lack of privilege (EPERM or
    /// EACCES), which usually means the process lacks root or CAP_NET_ADMIN and CAP_SYS_ADMIN.
    pub fn is_permission_denied(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = cause {
            if let Some(io_error) = error.downcast_ref::<io::Error>() {
                if io_error.kind() == io::ErrorKind::PermissionDenied {
                    return true;
                }
            }
            cause = error.source();
        }
        false
    }

    /// Tells whether an OVSDB operation failed because the bridge does not exist.
    pub fn is_bridge_not_found(&self) -> bool {
        matches!(self, Self::Ovsdb { source, .. } if matches!(**source, OvsdbError::BridgeNotFound { .. }))
    }
}

fn display_netns(netns: &Option<PathBuf>) -> String {
    match netns {
        Some(path) => format!("network namespace {}", path.display()),
        None => "the network namespace of this process".to_owned(),
    }
}

/// Converts an rtnetlink failure to the `io::Error` it carries, so that messages read
/// "File exists (os error 17)" and `is_permission_denied` can see the errno.
pub(crate) fn netlink_cause(error: rtnetlink::Error) -> io::Error {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.to_io(),
        other => io::Error::other(other),
    }
}

/// Returns the positive errno of a netlink NACK, if `error` is one.
pub(crate) fn netlink_errno(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.code.map(|code| -code.get()),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn permission_denied_found_in_source() {
        let error = PlumbingError::DeleteLink {
            ifname: "tap0".into(),
            netns: None,
            source: io::Error::from_raw_os_error(libc::EPERM),
        };
        assert!(error.is_permission_denied());
    }

    #[test]
    fn other_errno_is_not_permission_denied() {
        let error = PlumbingError::DeleteLink {
            ifname: "tap0".into(),
            netns: None,
            source: io::Error::from_raw_os_error(libc::EEXIST),
        };
        assert!(!error.is_permission_denied());
    }

    #[test]
    fn message_names_the_host_netns() {
        let error = PlumbingError::DeleteLink {
            ifname: "tap0".into(),
            netns: None,
            source: io::Error::from_raw_os_error(libc::EEXIST),
        };
        assert_eq!(
            error.to_string(),
            "delete interface tap0 in the network namespace of this process"
        );
    }
}
