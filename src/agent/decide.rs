//! Plans of the changes a reconcile makes on this host.
//!
//! Everything here is plain data in and out, so the rules are tested without Docker,
//! Neutron or OVS. The caller gathers the state, then runs the actions in the order given.
//!
//! Rules:
//! - A port is *plugged* when an OVS row on the bridge has `external_ids:iface-id` equal to
//!   the port ID, the row's host link exists, and the row records the container's current
//!   netns. A row without its link is stale: the kernel deletes a veth when its container's
//!   netns goes, but OVS keeps the row. A row of an earlier netns of a running container is
//!   stale too: the kernel keeps an old netns, and its veth, while anything references it.
//! - A port is kept while its `device_id` names an existing container, running or stopped,
//!   so that a stopped container gets the same port, MAC and IPs when it starts again.
//!   Only a port whose container no longer exists is deleted, and only when the port is
//!   *owned*: created for this agent's dockerd. Another dockerd on the same host, with its
//!   own agent, may run the container of any other port, so such a port and its OVS rows
//!   are left alone.
//! - A running container that wants a network gets a port on it: the plugged one if there is
//!   one, else its existing port re-plugged, else a new port. Its ports on other networks
//!   (for example from `clampify insert`) are re-plugged when unplugged.
//! - A skipped container's ports are left as they are.
//!
//! Port `status` is not used, because it is Neutron's view and lags the host: a port whose
//! veth is gone but whose OVS row remains still reads ACTIVE.

use std::collections::{BTreeSet, HashSet};

/// The agent's intent for one running container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// Leave the container's ports alone (see `labels::SkipReason`).
    Skip,
    /// Neutron network UUIDs, already resolved from names and checked against the policy.
    Networks(Vec<String>),
}

/// A running container and what it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningContainer {
    /// Full container ID, as stored in the port's `device_id`.
    pub id: String,
    pub wanted: Wanted,
    /// The container's current netns, in the form of [`OvsRow::netns`]; `None` matches
    /// every row.
    pub netns: Option<String>,
}

/// A Clampify port bound to this host, as Neutron lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortState {
    pub id: String,
    /// The full ID of the container the port was created for.
    pub device_id: String,
    pub network_id: String,
    /// Neutron's `status` (`ACTIVE`, `DOWN`, `BUILD`), for logs only.
    pub status: String,
    /// Whether the port was created for this agent's dockerd.
    pub owned: bool,
}

/// An OVS Interface row that Clampify created on the integration bridge.
///
/// Pass only rows that carry Clampify's own marker in `external_ids`. Other agents'
/// rows on the same bridge (Nova's taps, patch ports) also have an `iface-id`, and this
/// module would plan to remove every one of them whose port is not in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvsRow {
    /// Interface name, the host end of the veth.
    pub ifname: String,
    /// `external_ids:iface-id`, the Neutron port ID.
    pub iface_id: Option<String>,
    /// Whether a link named `ifname` exists in the host netns.
    pub link_exists: bool,
    /// `external_ids:clampify-netns`, the netns the port was plugged into.
    pub netns: Option<String>,
}

/// Ports and OVS rows on this host.
///
/// Read the OVS rows first, then the ports, then list the containers. A port is created
/// before its row, so every row read names a port in the list and is not taken for a row
/// without a port. A container created in between shows up in the container list, and its
/// new port is not mistaken for the port of a removed container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostState {
    pub ports: Vec<PortState>,
    pub ovs_rows: Vec<OvsRow>,
}

/// One change to make. A plan lists every `RemoveOvsRow` first, then every `DeletePort`,
/// then every `Attach`, and should run in that order: a re-plug creates a row with the
/// same interface name as the stale row it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Delete the OVS port and Interface rows named `ifname`, and the host link if it exists.
    RemoveOvsRow { ifname: String },
    /// Delete the Neutron port, whose container no longer exists.
    DeletePort { port_id: String, device_id: String },
    /// Plug `container` into `network_id`: re-plug `port_id` if given, else create a port.
    Attach {
        container: String,
        network_id: String,
        port_id: Option<String>,
    },
}

/// Plans a full reconcile of this host.
///
/// `existing_containers` contains the IDs of all containers, stopped ones included. Running
/// containers count as existing even if that list missed them.
pub fn reconcile(
    running: &[RunningContainer],
    existing_containers: &HashSet<String>,
    host: &HostState,
) -> Vec<Action> {
    let exists = |id: &str| existing_containers.contains(id) || running.iter().any(|c| c.id == id);
    let (live, missing): (Vec<&PortState>, Vec<&PortState>) =
        host.ports.iter().partition(|p| exists(&p.device_id));
    let live_ports: HashSet<&str> = live.iter().map(|p| p.id.as_str()).collect();
    let (orphans, foreign): (Vec<&PortState>, Vec<&PortState>) =
        missing.into_iter().partition(|p| p.owned);
    let foreign_ports: HashSet<&str> = foreign.iter().map(|p| p.id.as_str()).collect();
    let earlier_run = |row: &OvsRow| {
        let port = host
            .ports
            .iter()
            .find(|p| Some(p.id.as_str()) == row.iface_id.as_deref());
        let container = port.and_then(|p| running.iter().find(|c| c.id == p.device_id));
        container.is_some_and(|c| !is_current(row, c.netns.as_deref()))
    };

    let mut plan: Vec<Action> = host
        .ovs_rows
        .iter()
        .filter(|row| !is_row_of(row, &foreign_ports))
        .filter(|row| is_stale(row, &live_ports) || earlier_run(row))
        .map(remove_row)
        .collect();
    plan.extend(orphans.iter().map(|port| Action::DeletePort {
        port_id: port.id.clone(),
        device_id: port.device_id.clone(),
    }));
    for container in running {
        if let Wanted::Networks(networks) = &container.wanted {
            let netns = container.netns.as_deref();
            plan.extend(attaches(&container.id, netns, networks, host));
        }
    }
    plan
}

/// Plans the attaches of one running container. For a network with several ports of this
/// container, one plugged port is enough. If none is plugged, the lowest port ID is
/// re-plugged, so that every run picks the same one.
fn attaches(
    container: &str,
    netns: Option<&str>,
    networks: &[String],
    host: &HostState,
) -> Vec<Action> {
    let mut plan = Vec::new();
    let mut wanted = BTreeSet::new();
    for network in networks {
        if !wanted.insert(network.as_str()) {
            continue;
        }
        let mut on_network: Vec<&PortState> = ports_of(container, host)
            .filter(|p| p.network_id == *network)
            .collect();
        on_network.sort_by(|a, b| a.id.cmp(&b.id));
        if on_network.iter().any(|port| is_plugged(port, netns, host)) {
            continue;
        }
        plan.push(attach(
            container,
            network,
            on_network.first().map(|p| p.id.clone()),
        ));
    }

    let others = ports_of(container, host).filter(|p| !wanted.contains(p.network_id.as_str()));
    for port in others.filter(|port| !is_plugged(port, netns, host)) {
        plan.push(attach(container, &port.network_id, Some(port.id.clone())));
    }
    plan
}

fn ports_of<'a>(container: &'a str, host: &'a HostState) -> impl Iterator<Item = &'a PortState> {
    host.ports
        .iter()
        .filter(move |port| port.device_id == container)
}

/// Returns whether the row is stale: its link is gone, or its `iface-id` names no kept port.
fn is_stale(row: &OvsRow, live_ports: &HashSet<&str>) -> bool {
    !row.link_exists || !is_row_of(row, live_ports)
}

fn is_row_of(row: &OvsRow, ports: &HashSet<&str>) -> bool {
    row.iface_id.as_deref().is_some_and(|id| ports.contains(id))
}

fn is_plugged(port: &PortState, netns: Option<&str>, host: &HostState) -> bool {
    host.ovs_rows.iter().any(|row| {
        row.link_exists
            && row.iface_id.as_deref() == Some(port.id.as_str())
            && is_current(row, netns)
    })
}

/// Returns whether the row records `netns`, the container's current netns. Either side
/// being unknown counts as a match.
fn is_current(row: &OvsRow, netns: Option<&str>) -> bool {
    match (row.netns.as_deref(), netns) {
        (Some(recorded), Some(current)) => recorded == current,
        _ => true,
    }
}

fn remove_row(row: &OvsRow) -> Action {
    Action::RemoveOvsRow {
        ifname: row.ifname.clone(),
    }
}

fn attach(container: &str, network: &str, port_id: Option<String>) -> Action {
    Action::Attach {
        container: container.to_owned(),
        network_id: network.to_owned(),
        port_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C1: &str = "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1";
    const C2: &str = "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2";
    const GONE: &str = "dededededededededededededededededededededededededededededededede";

    fn port(id: &str, device_id: &str, network_id: &str) -> PortState {
        PortState {
            id: id.into(),
            device_id: device_id.into(),
            network_id: network_id.into(),
            status: "ACTIVE".into(),
            owned: true,
        }
    }

    /// Builds a port created for another dockerd on the host, or one that records no dockerd.
    fn foreign_port(id: &str, device_id: &str, network_id: &str) -> PortState {
        PortState {
            owned: false,
            ..port(id, device_id, network_id)
        }
    }

    fn row(ifname: &str, iface_id: Option<&str>, link_exists: bool) -> OvsRow {
        OvsRow {
            ifname: ifname.into(),
            iface_id: iface_id.map(Into::into),
            link_exists,
            netns: None,
        }
    }

    fn row_in(ifname: &str, iface_id: &str, netns: &str) -> OvsRow {
        OvsRow {
            netns: Some(netns.into()),
            ..row(ifname, Some(iface_id), true)
        }
    }

    fn wants_in(id: &str, networks: &[&str], netns: &str) -> RunningContainer {
        RunningContainer {
            netns: Some(netns.into()),
            ..wants(id, networks)
        }
    }

    fn wants(id: &str, networks: &[&str]) -> RunningContainer {
        let networks = networks.iter().map(|n| n.to_string()).collect();
        RunningContainer {
            id: id.into(),
            wanted: Wanted::Networks(networks),
            netns: None,
        }
    }

    fn skipped(id: &str) -> RunningContainer {
        RunningContainer {
            id: id.into(),
            wanted: Wanted::Skip,
            netns: None,
        }
    }

    fn remove(ifname: &str) -> Action {
        Action::RemoveOvsRow {
            ifname: ifname.into(),
        }
    }

    fn delete(port_id: &str, device_id: &str) -> Action {
        Action::DeletePort {
            port_id: port_id.into(),
            device_id: device_id.into(),
        }
    }

    fn replug(container: &str, network_id: &str, port_id: &str) -> Action {
        attach(container, network_id, Some(port_id.into()))
    }

    fn create(container: &str, network_id: &str) -> Action {
        attach(container, network_id, None)
    }

    fn ids(items: &[&str]) -> HashSet<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    struct Case {
        name: &'static str,
        running: Vec<RunningContainer>,
        existing: HashSet<String>,
        host: HostState,
        expected: Vec<Action>,
    }

    fn reconcile_cases() -> Vec<Case> {
        vec![
            Case {
                name: "plugged port needs nothing",
                running: vec![wants(C1, &["net1"])],
                existing: ids(&[C1]),
                host: HostState {
                    ports: vec![port("p1", C1, "net1")],
                    ovs_rows: vec![row("tapp1", Some("p1"), true)],
                },
                expected: vec![],
            },
            Case {
                name: "restart keeps port",
                running: vec![wants(C1, &["net1"])],
                existing: ids(&[C1]),
                host: HostState {
                    ports: vec![port("p1", C1, "net1")],
                    ovs_rows: vec![row("tapp1", Some("p1"), false)],
                },
                expected: vec![remove("tapp1"), replug(C1, "net1", "p1")],
            },
            Case {
                name: "port without row is re-plugged",
                running: vec![wants(C1, &["net1"])],
                existing: ids(&[C1]),
                host: HostState {
                    ports: vec![port("p1", C1, "net1")],
                    ovs_rows: vec![],
                },
                expected: vec![replug(C1, "net1", "p1")],
            },
            Case {
                name: "new container gets new port",
                running: vec![wants(C1, &["net1", "net2"])],
                existing: ids(&[C1]),
                host: HostState::default(),
                expected: vec![create(C1, "net1"), create(C1, "net2")],
            },
            Case {
                name: "removed container's port deleted",
                running: vec![],
                existing: ids(&[C1]),
                host: HostState {
                    ports: vec![port("p9", GONE, "net1")],
                    ovs_rows: vec![row("tapp9", Some("p9"), true)],
                },
                expected: vec![remove("tapp9"), delete("p9", GONE)],
            },
            Case {
                name: "stopped container's port kept",
                running: vec![],
                existing: ids(&[C2]),
                host: HostState {
                    ports: vec![port("p2", C2, "net1")],
                    ovs_rows: vec![],
                },
                expected: vec![],
            },
            Case {
                name: "stopped container's stale row removed",
                running: vec![],
                existing: ids(&[C2]),
                host: HostState {
                    ports: vec![port("p2", C2, "net1")],
                    ovs_rows: vec![row("tapp2", Some("p2"), false)],
                },
                expected: vec![remove("tapp2")],
            },
            Case {
                name: "row without port removed",
                running: vec![],
                existing: ids(&[]),
                host: HostState {
                    ports: vec![],
                    ovs_rows: vec![row("tapx", Some("unknown"), true), row("tapy", None, true)],
                },
                expected: vec![remove("tapx"), remove("tapy")],
            },
            Case {
                name: "inserted port on other network re-plugged",
                running: vec![wants(C1, &["net1"])],
                existing: ids(&[C1]),
                host: HostState {
                    ports: vec![port("p1", C1, "net1"), port("p5", C1, "net5")],
                    ovs_rows: vec![row("tapp1", Some("p1"), true)],
                },
                expected: vec![replug(C1, "net5", "p5")],
            },
            Case {
                name: "skipped container left alone",
                running: vec![skipped(C1)],
                existing: ids(&[C1]),
                host: HostState {
                    ports: vec![port("p1", C1, "net1")],
                    ovs_rows: vec![],
                },
                expected: vec![],
            },
            Case {
                name: "lowest port re-plugged among duplicates",
                running: vec![wants(C1, &["net1", "net1"])],
                existing: ids(&[C1]),
                host: HostState {
                    ports: vec![port("pb", C1, "net1"), port("pa", C1, "net1")],
                    ovs_rows: vec![],
                },
                expected: vec![replug(C1, "net1", "pa")],
            },
            Case {
                name: "row of current netns is plugged",
                running: vec![wants_in(C1, &["net1"], "/proc/200/ns/net")],
                existing: ids(&[C1]),
                host: HostState {
                    ports: vec![port("p1", C1, "net1")],
                    ovs_rows: vec![row_in("tapp1", "p1", "/proc/200/ns/net")],
                },
                expected: vec![],
            },
            Case {
                name: "lingering veth of earlier run replaced",
                running: vec![wants_in(C1, &["net1"], "/proc/200/ns/net")],
                existing: ids(&[C1]),
                host: HostState {
                    ports: vec![port("p1", C1, "net1")],
                    ovs_rows: vec![row_in("tapp1", "p1", "/proc/100/ns/net")],
                },
                expected: vec![remove("tapp1"), replug(C1, "net1", "p1")],
            },
            Case {
                name: "foreign port of missing container left alone",
                running: vec![wants(C1, &["net1"])],
                existing: ids(&[C1]),
                host: HostState {
                    ports: vec![port("p1", C1, "net1"), foreign_port("p8", GONE, "net1")],
                    ovs_rows: vec![
                        row("tapp1", Some("p1"), true),
                        row("tapp8", Some("p8"), true),
                    ],
                },
                expected: vec![],
            },
            Case {
                name: "foreign port's stale row left alone",
                running: vec![],
                existing: ids(&[]),
                host: HostState {
                    ports: vec![foreign_port("p8", GONE, "net1")],
                    ovs_rows: vec![row("tapp8", Some("p8"), false)],
                },
                expected: vec![],
            },
            Case {
                name: "foreign port of own container re-plugged",
                running: vec![wants(C1, &["net1"])],
                existing: ids(&[C1]),
                host: HostState {
                    ports: vec![foreign_port("p1", C1, "net1")],
                    ovs_rows: vec![row("tapp1", Some("p1"), false)],
                },
                expected: vec![remove("tapp1"), replug(C1, "net1", "p1")],
            },
            Case {
                name: "running container missing from list keeps port",
                running: vec![wants(C1, &["net1"])],
                existing: ids(&[]),
                host: HostState {
                    ports: vec![port("p1", C1, "net1")],
                    ovs_rows: vec![row("tapp1", Some("p1"), true)],
                },
                expected: vec![],
            },
        ]
    }

    #[test]
    fn reconcile_table() {
        for case in reconcile_cases() {
            let plan = reconcile(&case.running, &case.existing, &case.host);

            assert_eq!(plan, case.expected, "case: {}", case.name);
        }
    }

    #[test]
    fn reconcile_orders_removals_first() {
        let host = HostState {
            ports: vec![port("p1", C1, "net1"), port("p9", GONE, "net1")],
            ovs_rows: vec![row("tapp1", Some("p1"), false)],
        };

        let plan = reconcile(&[wants(C1, &["net1"])], &ids(&[C1]), &host);

        assert_eq!(
            plan,
            [
                remove("tapp1"),
                delete("p9", GONE),
                replug(C1, "net1", "p1")
            ]
        );
    }
}
