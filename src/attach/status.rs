//! Waiting for ports to become ACTIVE with one Neutron poll for all of them.
//!
//! Each waiter polling its own port would send one GET per port per interval. With many
//! containers starting at once those GETs queue in front of the port creations in Neutron's
//! API workers and slow every attach. The poller sends one `GET /v2.0/ports?id=…&id=…` per
//! interval for every port that is being waited for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use crate::openstack::{Neutron, NeutronError};

/// Status Neutron gives a port whose flows are in place.
const ACTIVE: &str = "ACTIVE";

/// Outcome of a wait: the port became ACTIVE, or it was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Active,
    Deleted,
}

/// Shared poller of port statuses; cheap to clone.
#[derive(Debug, Clone)]
pub struct StatusPoller {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    neutron: Neutron,
    interval: Duration,
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<Outcome>>>>,
    /// The last status seen per waited port, for the timeout message.
    seen: Mutex<HashMap<String, String>>,
    wake: Notify,
    running: AtomicBool,
}

impl StatusPoller {
    pub fn new(neutron: Neutron, interval: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                neutron,
                interval,
                waiters: Mutex::new(HashMap::new()),
                seen: Mutex::new(HashMap::new()),
                wake: Notify::new(),
                running: AtomicBool::new(false),
            }),
        }
    }

    /// Waits until Neutron reports `port_id` ACTIVE, or fails with
    /// [`NeutronError::NotActive`] after `timeout`.
    pub async fn wait_active(&self, port_id: &str, timeout: Duration) -> Result<(), NeutronError> {
        let started = Instant::now();
        let (sender, receiver) = oneshot::channel();
        if let Ok(mut waiters) = self.inner.waiters.lock() {
            waiters.entry(port_id.to_string()).or_default().push(sender);
        }
        self.ensure_running();
        self.inner.wake.notify_one();

        let result = tokio::time::timeout(timeout, receiver).await;
        let status = match result {
            Ok(Ok(Outcome::Active)) => return Ok(()),
            Ok(Ok(Outcome::Deleted)) => "deleted".to_string(),
            _ => {
                if let Ok(mut waiters) = self.inner.waiters.lock() {
                    waiters.remove(port_id);
                }
                self.inner
                    .seen
                    .lock()
                    .ok()
                    .and_then(|mut seen| seen.remove(port_id))
                    .unwrap_or_else(|| "unknown".to_string())
            }
        };
        Err(NeutronError::NotActive {
            port: port_id.to_string(),
            status,
            waited: started.elapsed(),
        })
    }

    /// Starts the polling task on first use; it runs for the life of the process.
    fn ensure_running(&self) {
        if self.inner.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.run().await });
    }
}

impl Inner {
    async fn run(&self) {
        loop {
            let ids = self.waited_ids();
            if ids.is_empty() {
                self.wake.notified().await;
                continue;
            }
            match self.neutron.statuses(&ids).await {
                Ok(statuses) => self.settle(&ids, &statuses),
                Err(err) => {
                    tracing::debug!(ports = ids.len(), error = %err, "port status poll failed; polling again")
                }
            }
            tokio::time::sleep(self.interval).await;
        }
    }

    fn waited_ids(&self) -> Vec<String> {
        self.waiters
            .lock()
            .map(|waiters| waiters.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Wakes the waiters of every ACTIVE or deleted port and records the others' status.
    ///
    /// Only ports in `polled` can be missing from `statuses`: a waiter that arrived while the
    /// request was in flight is settled by the next poll.
    fn settle(&self, polled: &[String], statuses: &HashMap<String, String>) {
        let Ok(mut waiters) = self.waiters.lock() else {
            return;
        };
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        for (port, status) in statuses {
            if status == ACTIVE {
                for sender in waiters.remove(port).unwrap_or_default() {
                    let _ = sender.send(Outcome::Active);
                }
                seen.remove(port);
            } else if waiters.contains_key(port) {
                seen.insert(port.clone(), status.clone());
            }
        }
        // A port Neutron no longer lists was deleted, and will never become ACTIVE.
        let deleted: Vec<String> = polled
            .iter()
            .filter(|port| waiters.contains_key(*port) && !statuses.contains_key(*port))
            .cloned()
            .collect();
        for port in deleted {
            for sender in waiters.remove(&port).unwrap_or_default() {
                let _ = sender.send(Outcome::Deleted);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inner_with_waiter(port: &str) -> (Inner, oneshot::Receiver<Outcome>) {
        let (sender, receiver) = oneshot::channel();
        let inner = Inner {
            neutron: Neutron::new(crate::openstack::testing::session_for_uri(
                "http://127.0.0.1:9",
            )),
            interval: Duration::from_millis(10),
            waiters: Mutex::new(HashMap::from([(port.to_string(), vec![sender])])),
            seen: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            running: AtomicBool::new(true),
        };
        (inner, receiver)
    }

    #[test]
    fn waiter_after_poll_is_not_deleted() {
        let (inner, mut receiver) = inner_with_waiter("late");

        inner.settle(&["early".to_string()], &HashMap::new());

        assert!(
            receiver.try_recv().is_err(),
            "a port not polled must keep waiting"
        );
    }

    #[test]
    fn polled_port_missing_is_deleted() {
        let (inner, mut receiver) = inner_with_waiter("gone");

        inner.settle(&["gone".to_string()], &HashMap::new());

        assert_eq!(receiver.try_recv().ok(), Some(Outcome::Deleted));
    }

    #[test]
    fn active_port_wakes_waiter() {
        let (inner, mut receiver) = inner_with_waiter("up");
        let statuses = HashMap::from([("up".to_string(), "ACTIVE".to_string())]);

        inner.settle(&["up".to_string()], &statuses);

        assert_eq!(receiver.try_recv().ok(), Some(Outcome::Active));
    }
}
