//! Port operations on the `Open_vSwitch` database.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::UnixStream;

use super::ops::{self, column, rows, SameName};
use super::rpc::RpcConnection;
use super::{OvsdbError, OvsdbOperation};
use crate::plumbing::PlumbingError;

/// The socket of the system's ovsdb-server on Debian and in upstream Open vSwitch packages.
pub const DEFAULT_ENDPOINT: &str = "unix:/var/run/openvswitch/db.sock";

/// How long port changes wait for ovs-vswitchd to apply them. It usually takes a few
/// milliseconds; a vswitchd that is busy reconfiguring many ports can take seconds.
pub const DEFAULT_APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request that does not wait on purpose may take before the client gives up on
/// ovsdb-server. Replies normally take well under a millisecond.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Extra time the client gives ovsdb-server beyond a `wait` timeout before giving up itself.
const SERVER_GRACE: Duration = Duration::from_secs(2);

/// One row of the Interface table, as `list_interfaces` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvsInterface {
    pub name: String,
    pub external_ids: BTreeMap<String, String>,
    /// OpenFlow port number; `None` until ovs-vswitchd assigns one, -1 if it failed.
    pub ofport: Option<i64>,
    /// The reason ovs-vswitchd gave for failing to open the interface, for example after its
    /// veth went away.
    pub error: Option<String>,
}

/// A connection to ovsdb-server. Clones share the connection, and requests from several
/// tasks run concurrently on it.
///
/// When the connection ends, for example because ovsdb-server restarted, the requests in
/// flight fail with [`OvsdbError::ConnectionLost`] and the next request connects again.
#[derive(Debug, Clone)]
pub struct OvsdbClient {
    rpc: Arc<tokio::sync::Mutex<Arc<RpcConnection>>>,
    endpoint: String,
    apply_timeout: Duration,
}

impl OvsdbClient {
    /// Connects to `endpoint`: `unix:PATH` or a plain socket path, such as
    /// [`DEFAULT_ENDPOINT`]. TCP and SSL endpoints are not supported.
    pub async fn connect(endpoint: &str) -> Result<Self, PlumbingError> {
        let rpc = open_connection(endpoint).await?;
        Ok(Self {
            rpc: Arc::new(tokio::sync::Mutex::new(Arc::new(rpc))),
            endpoint: endpoint.to_owned(),
            apply_timeout: DEFAULT_APPLY_TIMEOUT,
        })
    }

    /// Returns the open connection, connecting again if the last one has ended.
    async fn connection(&self) -> Result<Arc<RpcConnection>, OvsdbError> {
        let mut current = self.rpc.lock().await;
        if current.is_closed() {
            let fresh = open_connection(&self.endpoint).await.map_err(|error| {
                OvsdbError::ConnectionLost {
                    reason: format!("connecting again failed: {error}"),
                }
            })?;
            tracing::info!(endpoint = %self.endpoint, "connected to ovsdb-server again");
            *current = Arc::new(fresh);
        }
        Ok(Arc::clone(&current))
    }

    /// Sets how long `add_port` and `del_port` wait for ovs-vswitchd to apply a change.
    #[must_use]
    pub fn with_apply_timeout(mut self, timeout: Duration) -> Self {
        self.apply_timeout = timeout;
        self
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Returns the bridge's `datapath_type` (`netdev` for the userspace datapath, empty or
    /// `system` for the kernel one), or `None` when there is no such bridge.
    pub async fn bridge_datapath_type(
        &self,
        bridge: &str,
    ) -> Result<Option<String>, PlumbingError> {
        let op = || OvsdbOperation::BridgeDatapathType {
            bridge: bridge.to_owned(),
        };
        let results = self
            .transact(ops::bridge_datapath_type(bridge))
            .await
            .map_err(wrap(op))?;
        let found = rows(&results[0]).map_err(wrap(op))?;
        match found.first() {
            None => Ok(None),
            Some(row) => {
                let value = column(row, "datapath_type").map_err(wrap(op))?;
                let text = value.as_str().ok_or_else(|| {
                    wrap(op)(OvsdbError::Protocol(format!(
                        "datapath_type is not a string: {value}"
                    )))
                })?;
                Ok(Some(text.to_owned()))
            }
        }
    }

    /// Adds Port and Interface `ifname` (type "", with `external_ids`) to `bridge` in one
    /// transaction, and returns once ovs-vswitchd has applied it.
    ///
    /// Re-plugging is idempotent: a port already named `ifname`, on this or another bridge,
    /// is replaced, so its old `external_ids` cannot survive into the new attachment. A
    /// missing bridge fails the transaction before anything is written.
    pub async fn add_port(
        &self,
        bridge: &str,
        ifname: &str,
        external_ids: &BTreeMap<String, String>,
    ) -> Result<(), PlumbingError> {
        let op = || OvsdbOperation::AddPort {
            bridge: bridge.to_owned(),
            port: ifname.to_owned(),
        };
        let started = Instant::now();
        let missing_bridge = |error: OvsdbError| {
            if ops::is_wait_timeout(&error, 0) {
                wrap(op)(OvsdbError::BridgeNotFound {
                    bridge: bridge.to_owned(),
                })
            } else {
                wrap(op)(error)
            }
        };

        let first = ops::add_port(bridge, ifname, external_ids, SameName::Absent);
        let mut replaced = false;
        let results = match self.transact(first).await {
            Err(error) if ops::is_wait_timeout(&error, ops::NAME_FREE_WAIT) => {
                // A port of that name exists: look it up and replace it. If it went away
                // in between, the plain insert is tried once more.
                let found = self
                    .transact(ops::find_port(ifname))
                    .await
                    .map_err(wrap(op))?;
                let old_port = first_uuid(&found[0]).map_err(wrap(op))?;
                replaced = old_port.is_some();
                let same_name = old_port
                    .as_deref()
                    .map_or(SameName::Absent, SameName::Replace);
                let second = ops::add_port(bridge, ifname, external_ids, same_name);
                self.transact(second).await.map_err(missing_bridge)?
            }
            result => result.map_err(missing_bridge)?,
        };
        self.wait_applied(&results).await.map_err(wrap(op))?;

        tracing::debug!(
            bridge,
            host_ifname = ifname,
            replaced,
            elapsed = ?started.elapsed(),
            "OVS port added"
        );
        Ok(())
    }

    /// Removes port `ifname` from `bridge` with its Interface rows, and returns once
    /// ovs-vswitchd has applied it. Returns false when the bridge has no such port.
    pub async fn del_port(&self, bridge: &str, ifname: &str) -> Result<bool, PlumbingError> {
        let op = || OvsdbOperation::DelPort {
            bridge: bridge.to_owned(),
            port: ifname.to_owned(),
        };
        let started = Instant::now();

        let found = self
            .transact(ops::find_bridge_and_port(bridge, ifname))
            .await
            .map_err(wrap(op))?;
        if first_uuid(&found[0]).map_err(wrap(op))?.is_none() {
            return Err(wrap(op)(OvsdbError::BridgeNotFound {
                bridge: bridge.to_owned(),
            }));
        }
        let Some(port_uuid) = first_uuid(&found[1]).map_err(wrap(op))? else {
            return Ok(false);
        };

        let results = match self.transact(ops::del_port(bridge, &port_uuid)).await {
            Ok(results) => results,
            // The port is on another bridge, or went away since it was looked up.
            Err(error) if ops::is_wait_timeout(&error, 0) => return Ok(false),
            Err(error) => return Err(wrap(op)(error)),
        };
        self.wait_applied(&results).await.map_err(wrap(op))?;

        tracing::debug!(bridge, host_ifname = ifname, elapsed = ?started.elapsed(), "OVS port deleted");
        Ok(true)
    }

    /// Returns the interfaces of every port on `bridge`, sorted by name, including the
    /// bridge's own internal interface.
    pub async fn list_interfaces(&self, bridge: &str) -> Result<Vec<OvsInterface>, PlumbingError> {
        let op = || OvsdbOperation::ListInterfaces {
            bridge: bridge.to_owned(),
        };
        let results = self
            .transact(ops::list_interfaces(bridge))
            .await
            .map_err(wrap(op))?;
        let Some(bridge_row) = rows(&results[0]).map_err(wrap(op))?.first() else {
            return Err(wrap(op)(OvsdbError::BridgeNotFound {
                bridge: bridge.to_owned(),
            }));
        };
        join_interfaces(bridge_row, &results[1], &results[2]).map_err(wrap(op))
    }

    /// Returns the `external_ids` of Interface `name`, or `None` when there is no such row.
    pub async fn interface_external_ids(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, PlumbingError> {
        let op = || OvsdbOperation::InterfaceExternalIds {
            interface: name.to_owned(),
        };
        let results = self
            .transact(ops::interface_external_ids(name))
            .await
            .map_err(wrap(op))?;
        match rows(&results[0]).map_err(wrap(op))?.first() {
            None => Ok(None),
            Some(row) => {
                let ids = column(row, "external_ids").and_then(ops::parse_string_map);
                ids.map(Some).map_err(wrap(op))
            }
        }
    }

    /// Waits until Interface `name` carries `external_ids:ovn-installed="true"`, which
    /// ovn-controller writes once the port's flows are installed: the earliest local sign
    /// that traffic can flow, before Neutron reports the port ACTIVE.
    pub async fn wait_ovn_installed(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<(), PlumbingError> {
        let op = || OvsdbOperation::WaitOvnInstalled {
            interface: name.to_owned(),
        };
        let what = format!("ovn-controller to set ovn-installed on interface {name}");
        self.transact_waiting(
            ops::wait_ovn_installed(name, millis(timeout)),
            timeout,
            what,
        )
        .await
        .map(drop)
        .map_err(wrap(op))
    }

    /// Waits for ovs-vswitchd to reach the `next_cfg` that the transaction's final select read.
    async fn wait_applied(&self, results: &[Value]) -> Result<(), OvsdbError> {
        let next_cfg = results
            .last()
            .and_then(|select| select.get("rows"))
            .and_then(|rows| rows.get(0))
            .and_then(|row| row.get("next_cfg"))
            .and_then(Value::as_i64)
            .ok_or_else(|| OvsdbError::Protocol("transaction returned no next_cfg".to_owned()))?;
        let what = format!("ovs-vswitchd to apply configuration {next_cfg} (cur_cfg >= next_cfg)");
        let wait = ops::wait_applied(next_cfg, millis(self.apply_timeout));
        self.transact_waiting(wait, self.apply_timeout, what)
            .await
            .map(drop)
    }

    /// Runs a transaction made of one server-side `wait`, turning its timeout into
    /// [`OvsdbError::Timeout`]. The client also stops waiting if the server does not reply
    /// shortly after the timeout.
    async fn transact_waiting(
        &self,
        wait: Vec<Value>,
        timeout: Duration,
        what: String,
    ) -> Result<Vec<Value>, OvsdbError> {
        let started = Instant::now();
        let timed_out = |what| OvsdbError::Timeout {
            what,
            waited: started.elapsed(),
        };
        match self.transact_within(wait, timeout + SERVER_GRACE).await {
            Err(OvsdbError::Timeout { .. }) => Err(timed_out(what)),
            Err(error) if ops::is_wait_timeout(&error, 0) => Err(timed_out(what)),
            result => result,
        }
    }

    async fn transact(&self, operations: Vec<Value>) -> Result<Vec<Value>, OvsdbError> {
        self.transact_within(operations, REQUEST_TIMEOUT).await
    }

    /// Runs a transaction and checks its results, giving up after `limit`.
    async fn transact_within(
        &self,
        operations: Vec<Value>,
        limit: Duration,
    ) -> Result<Vec<Value>, OvsdbError> {
        let mut params = vec![Value::from(ops::DATABASE)];
        params.extend(operations.iter().cloned());
        let rpc = self.connection().await?;
        let call = rpc.call("transact", Value::Array(params));
        let result =
            tokio::time::timeout(limit, call)
                .await
                .map_err(|_| OvsdbError::Timeout {
                    what: format!("a reply from ovsdb-server at {}", self.endpoint),
                    waited: limit,
                })??;
        ops::check_results(&operations, result)
    }
}

/// Accepts `unix:PATH` and a plain path; rejects the other OVSDB endpoint kinds.
async fn open_connection(endpoint: &str) -> Result<RpcConnection, PlumbingError> {
    let path = socket_path(endpoint)?;
    let stream = UnixStream::connect(path).await.map_err(|source| {
        let endpoint = endpoint.to_owned();
        match source.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                PlumbingError::OvsdbUnreachable { endpoint, source }
            }
            _ => PlumbingError::OvsdbConnect { endpoint, source },
        }
    })?;
    Ok(RpcConnection::new(stream))
}

fn socket_path(endpoint: &str) -> Result<&Path, PlumbingError> {
    if let Some(path) = endpoint.strip_prefix("unix:") {
        return Ok(Path::new(path));
    }
    let has_other_scheme = ["tcp:", "ssl:", "ptcp:", "pssl:", "punix:"]
        .iter()
        .any(|scheme| endpoint.starts_with(scheme));
    if has_other_scheme || endpoint.is_empty() {
        return Err(PlumbingError::UnsupportedOvsdbEndpoint {
            endpoint: endpoint.to_owned(),
        });
    }
    Ok(Path::new(endpoint))
}

/// Returns a closure that wraps an [`OvsdbError`] with the operation it interrupted.
fn wrap<F>(op: F) -> impl Fn(OvsdbError) -> PlumbingError
where
    F: Fn() -> OvsdbOperation,
{
    move |source| PlumbingError::Ovsdb {
        op: op(),
        source: Box::new(source),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Returns the `_uuid` of the first row of a select result, if there is a row.
fn first_uuid(select: &Value) -> Result<Option<String>, OvsdbError> {
    match rows(select)?.first() {
        None => Ok(None),
        Some(row) => ops::parse_uuid(column(row, "_uuid")?).map(Some),
    }
}

/// Joins Bridge.ports → Port.interfaces → Interface rows.
fn join_interfaces(
    bridge_row: &Value,
    port_select: &Value,
    interface_select: &Value,
) -> Result<Vec<OvsInterface>, OvsdbError> {
    let mut interfaces_of_port = HashMap::new();
    for port in rows(port_select)? {
        let uuid = ops::parse_uuid(column(port, "_uuid")?)?;
        interfaces_of_port.insert(uuid, ops::parse_uuid_set(column(port, "interfaces")?)?);
    }
    let mut interface_by_uuid = HashMap::new();
    for row in rows(interface_select)? {
        interface_by_uuid.insert(ops::parse_uuid(column(row, "_uuid")?)?, row);
    }

    let mut interfaces = Vec::new();
    for port in ops::parse_uuid_set(column(bridge_row, "ports")?)? {
        for interface in interfaces_of_port.get(&port).into_iter().flatten() {
            if let Some(row) = interface_by_uuid.get(interface) {
                interfaces.push(parse_interface(row)?);
            }
        }
    }
    interfaces.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(interfaces)
}

fn parse_interface(row: &Value) -> Result<OvsInterface, OvsdbError> {
    let name = column(row, "name")?;
    Ok(OvsInterface {
        name: name
            .as_str()
            .ok_or_else(|| OvsdbError::Protocol(format!("interface name is not a string: {name}")))?
            .to_owned(),
        external_ids: ops::parse_string_map(column(row, "external_ids")?)?,
        ofport: ops::parse_optional_integer(column(row, "ofport")?)?,
        error: ops::parse_optional_string(column(row, "error")?)?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixListener;

    use super::*;

    /// Reads one JSON-RPC request from `stream` and replies to it with an empty result per
    /// operation. Requests in these tests fit in one read.
    async fn answer_one(stream: &mut tokio::net::UnixStream) {
        let mut buffer = vec![0u8; 64 * 1024];
        let count = stream.read(&mut buffer).await.unwrap();
        let request: Value = serde_json::from_slice(&buffer[..count]).unwrap();
        let operations = request["params"].as_array().unwrap().len() - 1;
        let reply =
            json!({"id": request["id"], "result": vec![json!({}); operations], "error": null});
        stream
            .write_all(&serde_json::to_vec(&reply).unwrap())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn request_after_lost_connection_connects_again() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("db.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let server = tokio::spawn(async move {
            // The first connection ends at once, as when ovsdb-server restarts.
            drop(listener.accept().await.unwrap());
            let (mut second, _) = listener.accept().await.unwrap();
            answer_one(&mut second).await;
        });
        let client = OvsdbClient::connect(socket.to_str().unwrap())
            .await
            .unwrap();
        let first = client.rpc.lock().await.clone();
        for _ in 0..100 {
            if first.is_closed() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        let result = client
            .transact(vec![json!({"op": "comment", "comment": "after reconnect"})])
            .await;

        assert!(first.is_closed(), "the first connection did not end");
        assert!(result.is_ok(), "{result:?}");
        server.await.unwrap();
    }

    #[test]
    fn endpoints_parsed() {
        assert_eq!(
            socket_path(DEFAULT_ENDPOINT).unwrap(),
            Path::new("/var/run/openvswitch/db.sock")
        );
        assert_eq!(
            socket_path("/run/ovs/db.sock").unwrap(),
            Path::new("/run/ovs/db.sock")
        );
        assert!(socket_path("tcp:127.0.0.1:6640").is_err());
        assert!(socket_path("").is_err());
    }

    #[test]
    fn interfaces_joined_through_ports() {
        let bridge = json!({"ports": ["set", [["uuid", "p1"], ["uuid", "p2"]]]});
        let ports = json!({"rows": [
            {"_uuid": ["uuid", "p1"], "interfaces": ["uuid", "i1"]},
            {"_uuid": ["uuid", "p2"], "interfaces": ["uuid", "i2"]},
            {"_uuid": ["uuid", "p3"], "interfaces": ["uuid", "i3"]},
        ]});
        let interfaces = json!({"rows": [
            {"_uuid": ["uuid", "i1"], "name": "tapb", "external_ids": ["map", [["iface-id", "b"]]],
             "ofport": 2, "error": ["set", []]},
            {"_uuid": ["uuid", "i2"], "name": "tapa", "external_ids": ["map", []],
             "ofport": -1, "error": "could not open network device tapa (No such device)"},
            {"_uuid": ["uuid", "i3"], "name": "elsewhere", "external_ids": ["map", []],
             "ofport": ["set", []], "error": ["set", []]},
        ]});

        let joined = join_interfaces(&bridge, &ports, &interfaces).unwrap();

        let names: Vec<&str> = joined
            .iter()
            .map(|interface| interface.name.as_str())
            .collect();
        assert_eq!(names, ["tapa", "tapb"]);
        assert_eq!(joined[0].ofport, Some(-1));
        assert_eq!(
            joined[0].error.as_deref(),
            Some("could not open network device tapa (No such device)")
        );
        assert_eq!(
            joined[1].external_ids.get("iface-id").map(String::as_str),
            Some("b")
        );
        assert_eq!(joined[1].error, None);
    }

    #[test]
    fn operation_named_in_error_chain() {
        let error = wrap(|| OvsdbOperation::AddPort {
            bridge: "br-x".into(),
            port: "tap1".into(),
        })(OvsdbError::BridgeNotFound {
            bridge: "br-x".into(),
        });
        assert_eq!(error.to_string(), "add port tap1 to OVS bridge br-x");
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("bridge br-x does not exist"));
        assert!(error.is_bridge_not_found());
    }
}
