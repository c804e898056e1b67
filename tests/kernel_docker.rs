//! The `docker` module against the real dockerd on /var/run/docker.sock.
//!
//! Needs root and the local image `clampify-busybox:latest`. Every container is named
//! `clampify-dkt-<random>` and removed by a drop guard. The `docker` CLI is the oracle.

#![cfg(feature = "kernel-tests")]
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clampify::docker::{
    ContainerEvent, Docker, DockerError, EventAction, EventCursor, EventsSince, NetworkMode,
};
use futures::{Stream, StreamExt};

const IMAGE: &str = "clampify-busybox:latest";
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// A container this test created; dropping it runs `docker rm -f`.
struct Scratch {
    id: String,
    name: String,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.id]).output();
    }
}

fn assert_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "Docker kernel tests need root: run `sudo -E cargo test --features kernel-tests`",
    );
}

fn random_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let salt = COUNTER.fetch_add(1, Ordering::Relaxed) ^ u64::from(std::process::id());
    format!("clampify-dkt-{:016x}", RandomState::new().hash_one(salt))
}

fn docker_cli(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Creates a container with `docker create` (or `docker run -d` when `start`), running
/// `sleep 300`, with `extra` options before the image.
fn scratch(start: bool, extra: &[&str]) -> Scratch {
    let name = random_name();
    let verb: &[&str] = if start { &["run", "-d"] } else { &["create"] };
    let mut args: Vec<&str> = verb.to_vec();
    args.extend(["--name", &name]);
    args.extend(extra);
    args.extend([IMAGE, "sleep", "300"]);
    let id = docker_cli(&args);
    Scratch { id, name }
}

fn now_seconds() -> EventsSince {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    EventsSince::UnixSeconds(i64::try_from(now.as_secs()).unwrap())
}

async fn connect() -> Docker {
    assert_root();
    Docker::connect(None).await.unwrap()
}

/// Reads `stream` until `done` returns true for an event of `id`, and returns that
/// container's events, in stream order.
async fn events_of(
    stream: &mut (impl Stream<Item = Result<ContainerEvent, DockerError>> + Unpin),
    id: &str,
    done: impl Fn(&ContainerEvent) -> bool,
) -> Vec<ContainerEvent> {
    let mut seen = Vec::new();
    loop {
        let next = tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await;
        let event = next.expect("no event within the timeout").unwrap().unwrap();
        if event.id == id {
            let finished = done(&event);
            seen.push(event);
            if finished {
                return seen;
            }
        }
    }
}

#[tokio::test]
async fn inspect_finds_by_name_prefix_and_id() {
    let docker = connect().await;
    let container = scratch(
        false,
        &["--network", "none", "--label", "clampify.networks=a,b"],
    );

    for key in [
        container.name.as_str(),
        &container.id[..16],
        container.id.as_str(),
    ] {
        let info = docker.inspect(key).await.unwrap();

        assert_eq!(info.id, container.id, "looked up by {key}");
        assert_eq!(info.name, container.name, "looked up by {key}");
        assert!(!info.running, "looked up by {key}");
        assert_eq!(info.pid, None, "looked up by {key}");
        assert_eq!(info.netns_path, None, "looked up by {key}");
        assert_eq!(info.started_at, None, "looked up by {key}");
        assert_eq!(info.network_mode, NetworkMode::None, "looked up by {key}");
        assert_eq!(
            info.labels["clampify.networks"], "a,b",
            "looked up by {key}"
        );
    }
}

#[tokio::test]
async fn inspect_missing_container_is_not_found() {
    let docker = connect().await;
    let name = random_name();

    let err = docker.inspect(&name).await.unwrap_err();

    assert!(err.is_not_found(), "{err:?}");
    assert!(err.to_string().contains(&name), "{err}");
}

#[tokio::test]
async fn inspect_ambiguous_prefix_is_reported() {
    let docker = connect().await;
    // 17 IDs over 16 hex digits: two of them must share their first digit.
    let mut first_digits = HashSet::new();
    let mut created = Vec::new();
    let shared = loop {
        let container = scratch(false, &["--network", "none"]);
        let first = container.id[..1].to_owned();
        created.push(container);
        if !first_digits.insert(first.clone()) {
            break first;
        }
    };

    let err = docker.inspect(&shared).await.unwrap_err();

    assert!(
        matches!(&err, DockerError::AmbiguousPrefix { prefix } if *prefix == shared),
        "{err:?}"
    );
}

#[tokio::test]
async fn inspect_reads_host_and_container_modes() {
    let docker = connect().await;
    let target = scratch(true, &["--network", "none"]);
    let host = scratch(false, &["--network", "host"]);
    let joined = scratch(false, &["--network", &format!("container:{}", target.id)]);

    let host_mode = docker.inspect(&host.id).await.unwrap().network_mode;
    let joined_mode = docker.inspect(&joined.id).await.unwrap().network_mode;

    assert_eq!(host_mode, NetworkMode::Host);
    assert_eq!(joined_mode, NetworkMode::Container(target.id.clone()));
}

#[tokio::test]
async fn inspect_gives_netns_of_running_pid() {
    let docker = connect().await;
    let container = scratch(true, &["--network", "none"]);
    let pid = docker_cli(&["inspect", "-f", "{{.State.Pid}}", &container.id]);

    let info = docker.inspect(&container.id).await.unwrap();

    assert!(info.running);
    assert_eq!(info.pid.map(|pid| pid.to_string()), Some(pid.clone()));
    let netns = info.netns_path.clone().unwrap();
    assert_eq!(netns, PathBuf::from(format!("/proc/{pid}/ns/net")));
    let container_netns = std::fs::read_link(&netns).unwrap();
    let own_netns = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(
        container_netns, own_netns,
        "a --network none container has its own netns"
    );
    assert!(info.started_at.is_some());
    assert!(info.resolv_conf_path.is_some());
}

#[tokio::test]
async fn verify_netns_detects_restart() {
    let docker = connect().await;
    let container = scratch(true, &["--network", "none"]);
    let before = docker.inspect(&container.id).await.unwrap();

    docker.verify_netns(&before).await.unwrap();
    docker_cli(&["restart", "-t", "0", &container.id]);
    let err = docker.verify_netns(&before).await.unwrap_err();

    assert!(
        matches!(err, DockerError::ContainerChanged { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn verify_netns_passes_stopped_and_removed() {
    let docker = connect().await;
    let container = scratch(true, &["--network", "none"]);
    let before = docker.inspect(&container.id).await.unwrap();

    docker_cli(&["stop", "-t", "0", &container.id]);
    let stopped = docker.verify_netns(&before).await;
    docker_cli(&["rm", "-f", &container.id]);
    let removed = docker.verify_netns(&before).await;

    assert!(stopped.is_ok(), "{stopped:?}");
    assert!(removed.is_ok(), "{removed:?}");
}

#[tokio::test]
async fn list_separates_running_from_all() {
    let docker = connect().await;
    let running = scratch(true, &["--network", "none"]);
    let created = scratch(false, &["--network", "none"]);

    let running_ids: HashSet<String> = docker
        .list_running()
        .await
        .unwrap()
        .into_iter()
        .map(|info| info.id)
        .collect();
    let all_ids: HashSet<String> = docker.list_all_ids().await.unwrap().into_iter().collect();

    assert!(running_ids.contains(&running.id));
    assert!(!running_ids.contains(&created.id));
    assert!(all_ids.contains(&running.id));
    assert!(all_ids.contains(&created.id));
}

#[tokio::test]
async fn events_follow_run_and_remove() {
    let docker = connect().await;
    // A `since` before the run makes the test independent of when the request reaches dockerd.
    let mut stream = docker.events(Some(now_seconds()));

    let container = scratch(
        true,
        &["--network", "none", "--label", "clampify.networks=n1"],
    );
    docker_cli(&["rm", "-f", &container.id]);
    let seen = events_of(&mut stream, &container.id, |e| {
        e.action == EventAction::Destroy
    })
    .await;

    let actions: Vec<EventAction> = seen.iter().map(|e| e.action).collect();
    assert_eq!(actions, EventAction::ALL);
    for event in &seen {
        assert_eq!(event.name, container.name);
        assert_eq!(
            event.labels.get("clampify.networks").map(String::as_str),
            Some("n1")
        );
        assert!(!event.labels.contains_key("name"));
        assert!(!event.labels.contains_key("image"));
        assert!(!event.labels.contains_key("exitCode"));
    }
}

#[tokio::test]
async fn events_since_is_inclusive_to_the_nanosecond() {
    let docker = connect().await;
    let before = now_seconds();
    let container = scratch(true, &["--network", "none"]);
    docker_cli(&["rm", "-f", &container.id]);
    let is_destroy = |e: &ContainerEvent| e.action == EventAction::Destroy;
    let mut from_before = docker.events(Some(before));
    let history = events_of(&mut from_before, &container.id, is_destroy).await;
    let first = history[0].time_nanos;

    let mut at_first = docker.events(Some(EventsSince::UnixNanos(first)));
    let mut after_first = docker.events(Some(EventsSince::UnixNanos(first + 1)));
    let replay_at = events_of(&mut at_first, &container.id, is_destroy).await;
    let replay_after = events_of(&mut after_first, &container.id, is_destroy).await;

    assert_eq!(history[0].action, EventAction::Create);
    assert_eq!(replay_at, history);
    assert_eq!(replay_after, history[1..]);
}

#[tokio::test]
async fn cursor_resume_skips_delivered_events() {
    let docker = connect().await;
    let mut cursor = EventCursor::new();
    let mut stream = docker.events(Some(now_seconds()));
    let first = scratch(true, &["--network", "none"]);
    docker_cli(&["rm", "-f", &first.id]);
    let is_destroy = |e: &ContainerEvent| e.action == EventAction::Destroy;
    for event in events_of(&mut stream, &first.id, is_destroy).await {
        assert!(cursor.admit(&event), "first delivery of {event:?}");
    }
    drop(stream);

    // Events of `second` happen while no stream is open, as during a reconnect.
    let second = scratch(true, &["--network", "none"]);
    let mut resumed = docker.events(cursor.since());
    let is_start = |e: &ContainerEvent| e.action == EventAction::Start;
    let mut delivered = Vec::new();
    loop {
        let next = tokio::time::timeout(EVENT_TIMEOUT, resumed.next()).await;
        let event = next.expect("no event within the timeout").unwrap().unwrap();
        if cursor.admit(&event) {
            delivered.push(event.clone());
        }
        if event.id == second.id && is_start(&event) {
            break;
        }
    }

    assert!(
        delivered.iter().all(|e| e.id != first.id),
        "replayed: {delivered:?}"
    );
    assert!(delivered.iter().any(|e| e.id == second.id && is_start(e)));
}
