//! Container lifecycle events from `GET /events`, and a cursor to resume them.
//!
//! How dockerd replays events, checked against dockerd 20.10.24 (API 1.41) on this project's
//! test machine and in moby's `daemon/events/events.go`:
//! - `since` accepts `SECONDS` or `SECONDS.NANOSECONDS`, and it is inclusive at nanosecond
//!   precision: `since=<an event's timeNano>` replays that event, one nanosecond later does not.
//! - The replay comes from an in-memory buffer of the last 256 events of every type, so a long
//!   disconnect loses events. Run a reconcile pass after every reconnect.
//! - dockerd takes an event's time before it takes the buffer lock, so two events published
//!   at nearly the same moment may reach the stream out of `timeNano` order.
//! - dockerd skips an event for a subscriber that does not take it within 100 ms, so read
//!   the stream without pause and queue the work.

use std::collections::{HashMap, HashSet, VecDeque};

use bollard::models::{EventMessage, EventMessageTypeEnum};

/// Actor attributes that dockerd adds to container events next to the labels. `die` carries
/// `exitCode`, and in moby releases after 20.10 also `execDuration`.
const DAEMON_ATTRIBUTES: [&str; 4] = ["name", "image", "exitCode", "execDuration"];

/// How far back [`EventCursor::since`] resumes before the newest event seen, so that events
/// published out of order around a reconnect are replayed and not lost.
const REPLAY_OVERLAP_NANOS: i64 = 1_000_000_000;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// The container actions Clampify subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventAction {
    Create,
    Start,
    Die,
    Destroy,
}

impl EventAction {
    /// Every action, in the order of a container's life.
    pub const ALL: [Self; 4] = [Self::Create, Self::Start, Self::Die, Self::Destroy];

    /// The `Action` string dockerd sends and accepts in the `event` filter.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Start => "start",
            Self::Die => "die",
            Self::Destroy => "destroy",
        }
    }

    fn parse(action: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|known| known.as_str() == action)
    }
}

/// One container event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    pub action: EventAction,
    /// Full container ID.
    pub id: String,
    /// Container name without a leading `/`; empty if dockerd sent none.
    pub name: String,
    /// The container's labels: the actor attributes without those dockerd adds itself (`name`,
    /// `image`, and on `die` also `exitCode` and `execDuration`). A label with one of those keys is
    /// lost here, so use `inspect` where such a label matters.
    pub labels: HashMap<String, String>,
    /// `timeNano`: Unix time in nanoseconds.
    pub time_nanos: i64,
}

impl ContainerEvent {
    /// Converts a message from the stream. Returns `None` for anything but a container
    /// start, die or destroy that carries an actor ID and a time.
    pub(crate) fn from_message(message: EventMessage) -> Option<Self> {
        if message.typ != Some(EventMessageTypeEnum::CONTAINER) {
            return None;
        }
        let action = EventAction::parse(message.action.as_deref()?)?;
        let time_nanos = message
            .time_nano
            .or_else(|| message.time?.checked_mul(NANOS_PER_SECOND))?;

        let actor = message.actor?;
        let mut labels = actor.attributes.unwrap_or_default();
        let name = labels.get("name").cloned().unwrap_or_default();
        for key in DAEMON_ATTRIBUTES {
            labels.remove(key);
        }

        Some(Self {
            action,
            id: actor.id?,
            name,
            labels,
            time_nanos,
        })
    }
}

/// The `since` parameter of the event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventsSince {
    UnixSeconds(i64),
    UnixNanos(i64),
}

impl EventsSince {
    /// Formats the value as dockerd parses it: `SECONDS` or `SECONDS.NNNNNNNNN`. dockerd
    /// scales a fraction of fewer than nine digits, so the fraction is always zero-padded.
    pub fn to_query(self) -> String {
        match self {
            Self::UnixSeconds(seconds) => seconds.to_string(),
            Self::UnixNanos(nanos) => format!(
                "{}.{:09}",
                nanos.div_euclid(NANOS_PER_SECOND),
                nanos.rem_euclid(NANOS_PER_SECOND)
            ),
        }
    }
}

/// Identity of one event. Two distinct events never share action, container and nanosecond.
type EventKey = (i64, EventAction, String);

/// Where to resume the event stream after a reconnect, and which replayed events to drop.
///
/// [`since`](Self::since) asks for one second more than the newest event seen, because
/// `since` is inclusive and events can arrive slightly out of time order. [`admit`](Self::admit)
/// then drops every event of that overlap that was already delivered. Handlers should still be
/// idempotent: a cursor lives only as long as the process, so a restarted agent starts afresh.
#[derive(Debug, Clone, Default)]
pub struct EventCursor {
    newest_nanos: Option<i64>,
    /// Events within the overlap before `newest_nanos`, oldest first.
    recent: VecDeque<EventKey>,
    recent_set: HashSet<EventKey>,
}

impl EventCursor {
    /// A cursor that has seen no event. Its `since` is `None`, which streams from now on.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `since` value for the next subscription.
    pub fn since(&self) -> Option<EventsSince> {
        let newest = self.newest_nanos?;
        Some(EventsSince::UnixNanos(
            newest.saturating_sub(REPLAY_OVERLAP_NANOS),
        ))
    }

    /// Records `event` and returns whether it is new. Returns `false` for an event already
    /// admitted, which happens for the overlap replayed after a reconnect.
    pub fn admit(&mut self, event: &ContainerEvent) -> bool {
        let key = (event.time_nanos, event.action, event.id.clone());
        if self.recent_set.contains(&key) {
            return false;
        }

        self.recent_set.insert(key.clone());
        self.recent.push_back(key);
        let newest = self
            .newest_nanos
            .map_or(event.time_nanos, |n| n.max(event.time_nanos));
        self.newest_nanos = Some(newest);
        self.forget_before(newest.saturating_sub(REPLAY_OVERLAP_NANOS));
        true
    }

    /// Drops keys older than the replay window; no resumed stream can deliver them again.
    /// Keys are pruned in arrival order, so a late out-of-order key may stay a little longer.
    fn forget_before(&mut self, oldest_kept: i64) {
        while let Some(front) = self.recent.front() {
            if front.0 >= oldest_kept {
                break;
            }
            if let Some(old) = self.recent.pop_front() {
                self.recent_set.remove(&old);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bollard::models::EventActor;

    use super::*;

    const ID: &str = "08d57194cb825068000e064efb682428996b9da6eb67e3606228f94eef2455f6";

    fn message(action: &str, attributes: &[(&str, &str)]) -> EventMessage {
        let attributes = attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EventMessage {
            typ: Some(EventMessageTypeEnum::CONTAINER),
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some(ID.into()),
                attributes: Some(attributes),
            }),
            time: Some(1_796_402_780),
            time_nano: Some(1_796_402_780_856_638_384),
            ..Default::default()
        }
    }

    fn event(action: EventAction, id: &str, time_nanos: i64) -> ContainerEvent {
        ContainerEvent {
            action,
            id: id.into(),
            name: String::new(),
            labels: HashMap::new(),
            time_nanos,
        }
    }

    #[test]
    fn die_message_keeps_only_labels() {
        let attributes = [
            ("name", "web"),
            ("image", "clampify-busybox:latest"),
            ("exitCode", "137"),
            ("execDuration", "3"),
            ("clampify.networks", "private"),
        ];

        let event = ContainerEvent::from_message(message("die", &attributes)).unwrap();

        assert_eq!(event.action, EventAction::Die);
        assert_eq!(event.id, ID);
        assert_eq!(event.name, "web");
        assert_eq!(event.time_nanos, 1_796_402_780_856_638_384);
        assert_eq!(
            event.labels,
            HashMap::from([("clampify.networks".to_string(), "private".to_string())])
        );
    }

    #[test]
    fn message_without_time_nano_uses_seconds() {
        let mut message = message("start", &[]);
        message.time_nano = None;

        let event = ContainerEvent::from_message(message).unwrap();

        assert_eq!(event.time_nanos, 1_796_402_780_000_000_000);
    }

    #[test]
    fn unwanted_messages_are_dropped() {
        let mut network = message("start", &[]);
        network.typ = Some(EventMessageTypeEnum::NETWORK);
        let mut no_actor_id = message("start", &[]);
        no_actor_id.actor = Some(EventActor {
            id: None,
            attributes: None,
        });
        let mut no_time = message("start", &[]);
        no_time.time = None;
        no_time.time_nano = None;

        assert_eq!(ContainerEvent::from_message(message("kill", &[])), None);
        assert_eq!(ContainerEvent::from_message(message("exec_die", &[])), None);
        assert_eq!(ContainerEvent::from_message(network), None);
        assert_eq!(ContainerEvent::from_message(no_actor_id), None);
        assert_eq!(ContainerEvent::from_message(no_time), None);
    }

    #[test]
    fn since_formats_seconds_and_nanoseconds() {
        assert_eq!(
            EventsSince::UnixSeconds(1_796_402_780).to_query(),
            "1796402780"
        );
        assert_eq!(
            EventsSince::UnixNanos(1_796_402_780_817_219_590).to_query(),
            "1796402780.817219590"
        );
        assert_eq!(
            EventsSince::UnixNanos(1_796_402_780_000_000_007).to_query(),
            "1796402780.000000007"
        );
    }

    #[test]
    fn fresh_cursor_streams_from_now() {
        assert_eq!(EventCursor::new().since(), None);
    }

    #[test]
    fn cursor_resumes_one_second_before_newest() {
        let mut cursor = EventCursor::new();
        cursor.admit(&event(EventAction::Start, ID, 5_000_000_000));
        cursor.admit(&event(EventAction::Die, ID, 7_500_000_000));

        assert_eq!(cursor.since(), Some(EventsSince::UnixNanos(6_500_000_000)));
    }

    #[test]
    fn cursor_drops_replayed_events() {
        let mut cursor = EventCursor::new();
        let start = event(EventAction::Start, ID, 5_000_000_000);
        let die = event(EventAction::Die, ID, 5_400_000_000);
        assert!(cursor.admit(&start));
        assert!(cursor.admit(&die));

        assert!(!cursor.admit(&start));
        assert!(!cursor.admit(&die));
        assert!(cursor.admit(&event(EventAction::Destroy, ID, 5_400_000_000)));
        assert!(cursor.admit(&event(EventAction::Die, "other", 5_400_000_000)));
    }

    #[test]
    fn cursor_admits_late_out_of_order_event() {
        let mut cursor = EventCursor::new();
        assert!(cursor.admit(&event(EventAction::Start, "b", 5_000_000_200)));

        assert!(cursor.admit(&event(EventAction::Start, "a", 5_000_000_100)));
        assert!(!cursor.admit(&event(EventAction::Start, "a", 5_000_000_100)));
    }

    #[test]
    fn cursor_forgets_events_outside_overlap() {
        let mut cursor = EventCursor::new();
        for second in 0..10 {
            cursor.admit(&event(EventAction::Start, ID, second * NANOS_PER_SECOND));
        }

        assert_eq!(cursor.recent.len(), 2);
        assert_eq!(cursor.recent_set.len(), 2);
    }
}
