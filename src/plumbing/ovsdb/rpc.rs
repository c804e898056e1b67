//! JSON-RPC 1.0 over a stream socket, as RFC 7047 section 4 uses it.
//!
//! One background task reads the socket. It replies to the server's `echo` requests and hands
//! each reply to the caller waiting for its id, so several tasks can have requests in flight
//! on one connection.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::framing::JsonFramer;
use super::OvsdbError;

type Reply = Result<Value, OvsdbError>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// A JSON-RPC connection. Dropping it stops the reader task and closes the socket.
pub(crate) struct RpcConnection {
    shared: Arc<Shared>,
    next_id: AtomicU64,
    reader: JoinHandle<()>,
}

impl std::fmt::Debug for RpcConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcConnection")
            .field("next_id", &self.next_id)
            .finish_non_exhaustive()
    }
}

/// State shared between callers and the reader task.
struct Shared {
    writer: tokio::sync::Mutex<Writer>,
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    waiters: HashMap<u64, oneshot::Sender<Reply>>,
    /// The reason the connection ended, set once it has.
    closed: Option<String>,
}

impl RpcConnection {
    /// Starts the reader task on `stream`. Must be called within a Tokio runtime.
    pub(crate) fn new<S>(stream: S) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        let shared = Arc::new(Shared {
            writer: tokio::sync::Mutex::new(Box::new(write)),
            pending: Mutex::new(Pending::default()),
        });
        let reader = tokio::spawn(read_loop(read, Arc::clone(&shared)));
        Self {
            shared,
            next_id: AtomicU64::new(1),
            reader,
        }
    }

    /// Sends request `method` with `params` and waits for its reply. A JSON-RPC error reply
    /// becomes [`OvsdbError::Rpc`].
    pub(crate) async fn call(&self, method: &str, params: Value) -> Reply {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        {
            let mut pending = self.shared.lock_pending();
            if let Some(reason) = &pending.closed {
                return Err(OvsdbError::ConnectionLost {
                    reason: reason.clone(),
                });
            }
            pending.waiters.insert(id, sender);
        }

        let request = json!({"id": id, "method": method, "params": params});
        tracing::trace!(id, method, "ovsdb request");
        if let Err(error) = self.shared.send(&request).await {
            self.shared.lock_pending().waiters.remove(&id);
            // A failed write leaves the stream unusable, possibly before the reader sees the
            // end of it, so the connection is closed here.
            self.shared.close(format!("write failed: {error}"));
            return Err(OvsdbError::Send(error));
        }

        match receiver.await {
            Ok(reply) => reply,
            Err(_) => Err(OvsdbError::ConnectionLost {
                reason: "the reader task ended".to_owned(),
            }),
        }
    }
}

impl RpcConnection {
    /// Returns whether the connection has ended; every later call on it fails.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.lock_pending().closed.is_some()
    }
}

impl Drop for RpcConnection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Shared {
    fn lock_pending(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock cannot leave the map half-updated, so the data stays
        // usable.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn send(&self, message: &Value) -> io::Result<()> {
        let bytes = serde_json::to_vec(message)?;
        let mut writer = self.writer.lock().await;
        writer.write_all(&bytes).await?;
        writer.flush().await
    }

    /// Routes one incoming message: replies to `echo`, delivers replies, ignores notifications.
    async fn dispatch(&self, message: Value) {
        if let Some(method) = message.get("method").and_then(Value::as_str) {
            if method == "echo" {
                self.answer_echo(&message).await;
            } else {
                tracing::trace!(method, "ignoring ovsdb notification");
            }
            return;
        }

        let Some(id) = message.get("id").and_then(Value::as_u64) else {
            tracing::debug!(%message, "ignoring ovsdb message without a numeric id");
            return;
        };
        let Some(waiter) = self.lock_pending().waiters.remove(&id) else {
            tracing::debug!(id, "ignoring ovsdb reply that no request waits for");
            return;
        };
        // The waiter is gone if its caller was cancelled; nothing else needs the reply.
        let _ = waiter.send(reply_of(message));
    }

    /// Every participant must implement `echo`, the liveness check of RFC 7047 section
    /// 4.1.11, and ovsdb-server drops connections that fail its inactivity probe. The reply
    /// repeats the request's params.
    async fn answer_echo(&self, request: &Value) {
        let params = request.get("params").cloned().unwrap_or_else(|| json!([]));
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let reply = json!({"id": id, "result": params, "error": null});
        if let Err(error) = self.send(&reply).await {
            tracing::debug!(%error, "failed to reply to ovsdb echo request");
        }
    }

    /// Fails every waiting request and every later one with `reason`.
    fn close(&self, reason: String) {
        let mut pending = self.lock_pending();
        for (_, waiter) in pending.waiters.drain() {
            let _ = waiter.send(Err(OvsdbError::ConnectionLost {
                reason: reason.clone(),
            }));
        }
        pending.closed = Some(reason);
    }
}

/// Converts a JSON-RPC reply to its result, or to the error it carries.
fn reply_of(mut message: Value) -> Reply {
    let error = message
        .get_mut("error")
        .map(Value::take)
        .unwrap_or(Value::Null);
    if error.is_null() {
        return Ok(message
            .get_mut("result")
            .map(Value::take)
            .unwrap_or(Value::Null));
    }
    Err(OvsdbError::rpc_from_json(&error))
}

async fn read_loop<S: AsyncRead>(read: ReadHalf<S>, shared: Arc<Shared>) {
    let reason = match read_messages(read, &shared).await {
        Ok(()) => "ovsdb-server closed the connection".to_owned(),
        Err(reason) => reason,
    };
    tracing::debug!(%reason, "ovsdb connection ended");
    shared.close(reason);
}

async fn read_messages<S: AsyncRead>(mut read: ReadHalf<S>, shared: &Shared) -> Result<(), String> {
    let mut framer = JsonFramer::default();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let count = read
            .read(&mut chunk)
            .await
            .map_err(|error| format!("read failed: {error}"))?;
        if count == 0 {
            return Ok(());
        }
        framer.push(&chunk[..count]);
        while let Some(message) = framer.next_text().map_err(|error| error.to_string())? {
            shared.dispatch(message).await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::net::UnixStream;

    use super::*;

    /// Reads one JSON text written by the connection under test.
    async fn read_request(server: &mut BufReader<UnixStream>, framer: &mut JsonFramer) -> Value {
        loop {
            if let Some(text) = framer.next_text().unwrap() {
                return text;
            }
            let bytes = server.fill_buf().await.unwrap().to_vec();
            assert!(
                !bytes.is_empty(),
                "connection closed before a request arrived"
            );
            server.consume(bytes.len());
            framer.push(&bytes);
        }
    }

    #[tokio::test]
    async fn replies_matched_by_id_out_of_order() {
        let (client, server) = UnixStream::pair().unwrap();
        let connection = Arc::new(RpcConnection::new(client));
        let mut server = BufReader::new(server);
        let mut framer = JsonFramer::default();

        let first = tokio::spawn({
            let connection = Arc::clone(&connection);
            async move { connection.call("first", json!([])).await }
        });
        let request_one = read_request(&mut server, &mut framer).await;
        let second = tokio::spawn({
            let connection = Arc::clone(&connection);
            async move { connection.call("second", json!([])).await }
        });
        let request_two = read_request(&mut server, &mut framer).await;
        assert_eq!(request_one["method"], "first");
        assert_eq!(request_two["method"], "second");

        // Answer the second request first, both in one write.
        let replies = format!(
            r#"{{"id":{},"result":"two","error":null}}{{"id":{},"result":"one","error":null}}"#,
            request_two["id"], request_one["id"]
        );
        server
            .get_mut()
            .write_all(replies.as_bytes())
            .await
            .unwrap();

        assert_eq!(first.await.unwrap().unwrap(), json!("one"));
        assert_eq!(second.await.unwrap().unwrap(), json!("two"));
    }

    #[tokio::test]
    async fn echo_answered_with_its_params() {
        let (client, server) = UnixStream::pair().unwrap();
        let _connection = RpcConnection::new(client);
        let mut server = BufReader::new(server);
        let mut framer = JsonFramer::default();

        server
            .get_mut()
            .write_all(br#"{"id":"echo","method":"echo","params":["x"]}"#)
            .await
            .unwrap();
        let reply = read_request(&mut server, &mut framer).await;
        assert_eq!(reply, json!({"id": "echo", "result": ["x"], "error": null}));
    }

    #[tokio::test]
    async fn error_reply_carries_error_and_details() {
        let (client, server) = UnixStream::pair().unwrap();
        let connection = Arc::new(RpcConnection::new(client));
        let mut server = BufReader::new(server);
        let mut framer = JsonFramer::default();

        let call = tokio::spawn({
            let connection = Arc::clone(&connection);
            async move { connection.call("transact", json!(["Nope"])).await }
        });
        let request = read_request(&mut server, &mut framer).await;
        let reply = json!({"id": request["id"], "result": null,
            "error": {"error": "unknown database", "details": "get_schema: Nope"}});
        server
            .get_mut()
            .write_all(reply.to_string().as_bytes())
            .await
            .unwrap();

        let error = call.await.unwrap().unwrap_err();
        assert_eq!(
            error.to_string(),
            "ovsdb-server rejected the request: unknown database (get_schema: Nope)"
        );
    }

    #[tokio::test]
    async fn pending_request_fails_when_server_closes() {
        let (client, server) = UnixStream::pair().unwrap();
        let connection = Arc::new(RpcConnection::new(client));
        let mut server = BufReader::new(server);
        let mut framer = JsonFramer::default();

        let call = tokio::spawn({
            let connection = Arc::clone(&connection);
            async move { connection.call("list_dbs", json!([])).await }
        });
        read_request(&mut server, &mut framer).await;
        drop(server);

        let error = call.await.unwrap().unwrap_err();
        assert!(
            matches!(error, OvsdbError::ConnectionLost { .. }),
            "{error}"
        );
        let later = connection.call("list_dbs", json!([])).await.unwrap_err();
        assert!(
            matches!(later, OvsdbError::ConnectionLost { .. }),
            "{later}"
        );
    }
}
