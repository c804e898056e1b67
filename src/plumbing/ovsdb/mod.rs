//! A small OVSDB client (RFC 7047) for the `Open_vSwitch` database: adding and removing
//! ports on a bridge, and reading back what Open vSwitch made of them.
//!
//! It speaks JSON-RPC over ovsdb-server's unix socket, as `ovs-vsctl` does, without starting
//! a process per call.

mod client;
mod framing;
mod ops;
mod rpc;

use std::fmt;
use std::io;
use std::time::Duration;

pub use client::{OvsInterface, OvsdbClient, DEFAULT_APPLY_TIMEOUT, DEFAULT_ENDPOINT};
pub use framing::FrameError;

/// The OVSDB step that failed, with the bridge and port it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OvsdbOperation {
    AddPort { bridge: String, port: String },
    DelPort { bridge: String, port: String },
    ListInterfaces { bridge: String },
    BridgeDatapathType { bridge: String },
    InterfaceExternalIds { interface: String },
    WaitOvnInstalled { interface: String },
}

impl fmt::Display for OvsdbOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddPort { bridge, port } => write!(f, "add port {port} to OVS bridge {bridge}"),
            Self::DelPort { bridge, port } => {
                write!(f, "delete port {port} from OVS bridge {bridge}")
            }
            Self::ListInterfaces { bridge } => write!(f, "list interfaces of OVS bridge {bridge}"),
            Self::BridgeDatapathType { bridge } => {
                write!(f, "read datapath_type of OVS bridge {bridge}")
            }
            Self::InterfaceExternalIds { interface } => {
                write!(f, "read external_ids of OVS interface {interface}")
            }
            Self::WaitOvnInstalled { interface } => {
                write!(f, "wait for ovn-installed on OVS interface {interface}")
            }
        }
    }
}

/// The cause of a failed OVSDB operation. Texts that ovsdb-server sent are kept verbatim.
#[derive(Debug, thiserror::Error)]
pub enum OvsdbError {
    #[error("send request to ovsdb-server")]
    Send(#[source] io::Error),

    #[error("connection to ovsdb-server lost: {reason}")]
    ConnectionLost { reason: String },

    /// A JSON-RPC error reply, such as "unknown database".
    #[error("ovsdb-server rejected the request: {error}{}", details_suffix(.details))]
    Rpc {
        error: String,
        details: Option<String>,
    },

    /// Operation `index` of a transaction (or the commit, after the last operation) failed,
    /// so nothing in the transaction was applied.
    #[error("transaction failed at {op} (operation {index}): {error}{}", details_suffix(.details))]
    Transaction {
        index: usize,
        op: String,
        error: String,
        details: Option<String>,
    },

    #[error("bridge {bridge} does not exist")]
    BridgeNotFound { bridge: String },

    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout { what: String, waited: Duration },

    #[error("unexpected reply from ovsdb-server: {0}")]
    Protocol(String),
}

impl OvsdbError {
    /// Builds [`OvsdbError::Rpc`] from the `error` member of a JSON-RPC reply, which
    /// ovsdb-server sends as `{"error": "...", "details": "..."}`.
    pub(crate) fn rpc_from_json(error: &serde_json::Value) -> Self {
        let (error, details) = error_and_details(error);
        Self::Rpc { error, details }
    }
}

/// Splits an RFC 7047 error object into its `error` and `details` strings.
pub(crate) fn error_and_details(value: &serde_json::Value) -> (String, Option<String>) {
    let error = match value.get("error") {
        Some(serde_json::Value::String(error)) => error.clone(),
        Some(other) => other.to_string(),
        None => match value {
            serde_json::Value::String(error) => error.clone(),
            other => other.to_string(),
        },
    };
    let details = value
        .get("details")
        .and_then(|details| details.as_str())
        .map(str::to_owned);
    (error, details)
}

fn details_suffix(details: &Option<String>) -> String {
    match details {
        Some(details) => format!(" ({details})"),
        None => String::new(),
    }
}
