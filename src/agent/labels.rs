//! Container labels that request Neutron networks, and the policy that limits them.
//!
//! | label | value |
//! | --- | --- |
//! | `clampify.networks` | network names or UUIDs, comma-separated, attached in this order |
//! | `clampify.disable` | `true`/`yes`/`1` or `false`/`no`/`0`, any case |
//! | `clampify.ips` | fixed IP addresses for the ports, comma-separated |
//! | `clampify.security-groups` | security group names or UUIDs, comma-separated |
//!
//! Entries are trimmed. An empty entry or a repeated one is an error, so a name that
//! contains a comma must be given by its UUID.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::docker::NetworkMode;

pub const NETWORKS_LABEL: &str = "clampify.networks";
pub const DISABLE_LABEL: &str = "clampify.disable";
pub const IPS_LABEL: &str = "clampify.ips";
pub const SECURITY_GROUPS_LABEL: &str = "clampify.security-groups";

/// The agent's verdict on one container: skip it or attach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Skip(SkipReason),
    Attach(AttachSpec),
}

/// The networks and port settings a container requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachSpec {
    /// Network names or UUIDs, in attach order, without duplicates.
    pub networks: Vec<String>,
    /// The origin of `networks`, for messages.
    pub networks_from: NetworkSource,
    pub ips: Vec<IpAddr>,
    pub security_groups: Vec<String>,
}

/// The origin of a container's network list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkSource {
    /// The `clampify.networks` label.
    Label,
    /// The agent's default networks, used when the label is absent.
    Default,
}

impl fmt::Display for NetworkSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Label => write!(f, "label {NETWORKS_LABEL}"),
            Self::Default => f.write_str("the agent's default networks"),
        }
    }
}

/// The reason the agent leaves a container alone. `Display` gives the sentence to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    Disabled,
    /// The container runs in the host's netns, which Clampify never changes.
    HostNetwork,
    /// The container uses another container's netns, so ports belong to that container.
    SharedNetns {
        container: String,
    },
    /// No `clampify.networks` label, and the agent has no default network.
    NoNetwork,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disabled => write!(f, "label {DISABLE_LABEL} is set"),
            Self::HostNetwork => f.write_str("the container uses the host network"),
            Self::SharedNetns { container } => {
                write!(
                    f,
                    "the container uses the network namespace of container {container}"
                )
            }
            Self::NoNetwork => write!(
                f,
                "the container has no {NETWORKS_LABEL} label and the agent has no default network"
            ),
        }
    }
}

/// An invalid `clampify.*` label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("label {label}: {value:?} is not a boolean: use true or false")]
    InvalidBool { label: &'static str, value: String },

    #[error("label {label}: {value:?} has an empty entry: list values separated by single commas")]
    EmptyEntry { label: &'static str, value: String },

    #[error("label {label}: {entry:?} is listed more than once")]
    Duplicate { label: &'static str, entry: String },

    #[error("label {label}: {entry:?} is not an IP address")]
    InvalidIp { label: &'static str, entry: String },

    #[error("label {label}: {ip} is in no subnet of the requested networks: request an address of one of their subnets")]
    IpOutsideSubnets { label: &'static str, ip: IpAddr },
}

/// Checks that every address of `clampify.ips` lies in one of `subnets`, the subnets of all
/// requested networks. Each port gets the addresses that its network's subnets contain, so
/// an address outside all of them would be dropped without a word.
pub fn check_ips_in_subnets(ips: &[IpAddr], subnets: &[IpNet]) -> Result<(), LabelError> {
    match ips
        .iter()
        .find(|ip| !subnets.iter().any(|subnet| subnet.contains(*ip)))
    {
        Some(ip) => Err(LabelError::IpOutsideSubnets {
            label: IPS_LABEL,
            ip: *ip,
        }),
        None => Ok(()),
    }
}

/// Decides from a container's labels and network mode whether to attach it, and to what.
///
/// The checks run in this order, and the first that applies wins: `clampify.disable`, the
/// network mode (host and `container:` are skipped even when the labels request networks),
/// the network list (`clampify.networks`, else `default_networks`), then the IPs and
/// security groups. So a disabled container never fails on its other labels.
pub fn evaluate(
    labels: &HashMap<String, String>,
    network_mode: &NetworkMode,
    default_networks: &[String],
) -> Result<Decision, LabelError> {
    if let Some(value) = labels.get(DISABLE_LABEL) {
        if parse_bool(DISABLE_LABEL, value)? {
            return Ok(Decision::Skip(SkipReason::Disabled));
        }
    }

    match network_mode {
        NetworkMode::Host => return Ok(Decision::Skip(SkipReason::HostNetwork)),
        NetworkMode::Container(container) => {
            let container = container.clone();
            return Ok(Decision::Skip(SkipReason::SharedNetns { container }));
        }
        NetworkMode::None | NetworkMode::Bridge | NetworkMode::Other(_) => {}
    }

    let (networks, networks_from) = match labels.get(NETWORKS_LABEL) {
        Some(value) => (parse_list(NETWORKS_LABEL, value)?, NetworkSource::Label),
        None => (default_networks.to_vec(), NetworkSource::Default),
    };
    if networks.is_empty() {
        return Ok(Decision::Skip(SkipReason::NoNetwork));
    }

    let ips = optional_list(labels, IPS_LABEL)?
        .into_iter()
        .map(|entry| parse_ip(IPS_LABEL, entry))
        .collect::<Result<Vec<_>, _>>()?;
    reject_duplicates(IPS_LABEL, &ips)?;
    let security_groups = optional_list(labels, SECURITY_GROUPS_LABEL)?;

    Ok(Decision::Attach(AttachSpec {
        networks,
        networks_from,
        ips,
        security_groups,
    }))
}

/// Accepts `true`/`yes`/`1` and `false`/`no`/`0` in any case. Anything else is an error
/// rather than `false`, so that a typo cannot attach a container its owner meant to exclude.
fn parse_bool(label: &'static str, value: &str) -> Result<bool, LabelError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(LabelError::InvalidBool {
            label,
            value: value.to_owned(),
        }),
    }
}

fn optional_list(
    labels: &HashMap<String, String>,
    label: &'static str,
) -> Result<Vec<String>, LabelError> {
    labels
        .get(label)
        .map_or(Ok(Vec::new()), |value| parse_list(label, value))
}

/// Splits a comma-separated label value into trimmed entries, rejecting empty and repeated
/// ones. An empty value is one empty entry, so it is rejected too.
fn parse_list(label: &'static str, value: &str) -> Result<Vec<String>, LabelError> {
    let mut entries = Vec::new();
    for entry in value.split(',').map(str::trim) {
        if entry.is_empty() {
            return Err(LabelError::EmptyEntry {
                label,
                value: value.to_owned(),
            });
        }
        entries.push(entry.to_owned());
    }
    reject_duplicates(label, &entries)?;
    Ok(entries)
}

fn parse_ip(label: &'static str, entry: String) -> Result<IpAddr, LabelError> {
    entry
        .parse()
        .map_err(|_| LabelError::InvalidIp { label, entry })
}

fn reject_duplicates<T>(label: &'static str, entries: &[T]) -> Result<(), LabelError>
where
    T: Eq + std::hash::Hash + fmt::Display,
{
    let mut seen = HashSet::new();
    match entries.iter().find(|entry| !seen.insert(*entry)) {
        Some(entry) => Err(LabelError::Duplicate {
            label,
            entry: entry.to_string(),
        }),
        None => Ok(()),
    }
}

/// Limits on the networks the agent may attach containers to. An empty list does not
/// restrict, and when both lists are set, a network must pass both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Network names or UUIDs.
    pub allowed_networks: Vec<String>,
    /// Project (tenant) UUIDs that may own the network.
    pub allowed_projects: Vec<String>,
}

/// A requested network after Neutron resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedNetwork {
    pub id: String,
    pub name: String,
    pub project_id: String,
}

/// A network that the policy forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{requested_by}: network {requested:?} ({network_id}) is not in the policy's allowed_networks: add it there or request another network")]
    NetworkNotAllowed {
        requested_by: NetworkSource,
        requested: String,
        network_id: String,
    },

    #[error("{requested_by}: network {requested:?} ({network_id}) belongs to project {project_id}, which is not in the policy's allowed_projects")]
    ProjectNotAllowed {
        requested_by: NetworkSource,
        requested: String,
        network_id: String,
        project_id: String,
    },
}

impl Policy {
    /// Checks one network. `requested` is the entry as the container gave it, and
    /// `requested_by` where it came from, so that the error points at what to change.
    ///
    /// `allowed_networks` matches the network's UUID or its name. A name in the policy
    /// therefore allows every network with that name, since Neutron names are not unique.
    pub fn check(
        &self,
        requested: &str,
        requested_by: NetworkSource,
        network: &ResolvedNetwork,
    ) -> Result<(), PolicyError> {
        let listed = |entry: &String| *entry == network.id || *entry == network.name;
        if !self.allowed_networks.is_empty() && !self.allowed_networks.iter().any(listed) {
            return Err(PolicyError::NetworkNotAllowed {
                requested_by,
                requested: requested.to_owned(),
                network_id: network.id.clone(),
            });
        }

        if !self.allowed_projects.is_empty() && !self.allowed_projects.contains(&network.project_id)
        {
            return Err(PolicyError::ProjectNotAllowed {
                requested_by,
                requested: requested.to_owned(),
                network_id: network.id.clone(),
                project_id: network.project_id.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    fn attach_spec(decision: Decision) -> AttachSpec {
        match decision {
            Decision::Attach(spec) => spec,
            Decision::Skip(reason) => panic!("expected attach, got skip: {reason}"),
        }
    }

    #[test]
    fn networks_label_keeps_order() {
        let labels = labels(&[(
            NETWORKS_LABEL,
            " private , 3f2a9c1e-0d4b-4c55-9a43-5b8f0e7d1c22,db",
        )]);

        let spec = attach_spec(evaluate(&labels, &NetworkMode::None, &[]).unwrap());

        assert_eq!(
            spec.networks,
            ["private", "3f2a9c1e-0d4b-4c55-9a43-5b8f0e7d1c22", "db"]
        );
        assert_eq!(spec.networks_from, NetworkSource::Label);
        assert!(spec.ips.is_empty());
        assert!(spec.security_groups.is_empty());
    }

    #[test]
    fn label_overrides_default_networks() {
        let labels = labels(&[(NETWORKS_LABEL, "db")]);

        let spec =
            attach_spec(evaluate(&labels, &NetworkMode::Bridge, &strings(&["public"])).unwrap());

        assert_eq!(spec.networks, ["db"]);
    }

    #[test]
    fn default_networks_apply_without_label() {
        let spec =
            attach_spec(evaluate(&labels(&[]), &NetworkMode::None, &strings(&["public"])).unwrap());

        assert_eq!(spec.networks, ["public"]);
        assert_eq!(spec.networks_from, NetworkSource::Default);
    }

    #[test]
    fn ips_and_security_groups_parse() {
        let labels = labels(&[
            (NETWORKS_LABEL, "private"),
            (IPS_LABEL, "10.0.0.5, 2001:db8::5"),
            (SECURITY_GROUPS_LABEL, "default,web"),
        ]);

        let spec = attach_spec(evaluate(&labels, &NetworkMode::None, &[]).unwrap());

        let expected_ips: Vec<IpAddr> = vec![
            Ipv4Addr::new(10, 0, 0, 5).into(),
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5).into(),
        ];
        assert_eq!(spec.ips, expected_ips);
        assert_eq!(spec.security_groups, ["default", "web"]);
    }

    #[test]
    fn skip_reasons_by_case() {
        let shared = NetworkMode::Container("db".into());
        let private = labels(&[(NETWORKS_LABEL, "private")]);
        let cases = [
            (
                labels(&[(DISABLE_LABEL, "true"), (NETWORKS_LABEL, "private")]),
                NetworkMode::None,
                SkipReason::Disabled,
            ),
            (
                labels(&[(DISABLE_LABEL, "YES")]),
                NetworkMode::None,
                SkipReason::Disabled,
            ),
            (
                labels(&[(DISABLE_LABEL, "1"), (IPS_LABEL, "not-an-ip")]),
                NetworkMode::None,
                SkipReason::Disabled,
            ),
            (private.clone(), NetworkMode::Host, SkipReason::HostNetwork),
            (
                private,
                shared,
                SkipReason::SharedNetns {
                    container: "db".into(),
                },
            ),
            (labels(&[]), NetworkMode::Bridge, SkipReason::NoNetwork),
            (
                labels(&[(DISABLE_LABEL, "false")]),
                NetworkMode::None,
                SkipReason::NoNetwork,
            ),
        ];

        for (labels, mode, expected) in cases {
            let decision = evaluate(&labels, &mode, &[]).unwrap();
            assert_eq!(
                decision,
                Decision::Skip(expected),
                "labels {labels:?}, mode {mode:?}"
            );
        }
    }

    #[test]
    fn disable_false_still_attaches() {
        let labels = labels(&[(DISABLE_LABEL, " No "), (NETWORKS_LABEL, "private")]);

        let spec = attach_spec(evaluate(&labels, &NetworkMode::None, &[]).unwrap());

        assert_eq!(spec.networks, ["private"]);
    }

    #[test]
    fn skip_reason_messages() {
        assert_eq!(
            SkipReason::Disabled.to_string(),
            "label clampify.disable is set"
        );
        assert_eq!(
            SkipReason::HostNetwork.to_string(),
            "the container uses the host network"
        );
        assert_eq!(
            SkipReason::SharedNetns {
                container: "db".into()
            }
            .to_string(),
            "the container uses the network namespace of container db"
        );
        assert_eq!(
            SkipReason::NoNetwork.to_string(),
            "the container has no clampify.networks label and the agent has no default network"
        );
    }

    #[test]
    fn invalid_labels_are_errors() {
        let cases = [
            (labels(&[(DISABLE_LABEL, "ture")]), "label clampify.disable: \"ture\" is not a boolean: use true or false"),
            (labels(&[(NETWORKS_LABEL, "a,,b")]), "label clampify.networks: \"a,,b\" has an empty entry: list values separated by single commas"),
            (labels(&[(NETWORKS_LABEL, "")]), "label clampify.networks: \"\" has an empty entry: list values separated by single commas"),
            (labels(&[(NETWORKS_LABEL, "a, b ,a")]), "label clampify.networks: \"a\" is listed more than once"),
            (labels(&[(NETWORKS_LABEL, "a"), (IPS_LABEL, "x")]), "label clampify.ips: \"x\" is not an IP address"),
            (labels(&[(NETWORKS_LABEL, "a"), (IPS_LABEL, "10.0.0.5/24")]), "label clampify.ips: \"10.0.0.5/24\" is not an IP address"),
            (labels(&[(NETWORKS_LABEL, "a"), (IPS_LABEL, "2001:db8::1,2001:DB8:0::1")]), "label clampify.ips: \"2001:db8::1\" is listed more than once"),
            (labels(&[(NETWORKS_LABEL, "a"), (SECURITY_GROUPS_LABEL, "web,")]), "label clampify.security-groups: \"web,\" has an empty entry: list values separated by single commas"),
        ];

        for (labels, expected) in cases {
            let err = evaluate(&labels, &NetworkMode::None, &[]).unwrap_err();
            assert_eq!(err.to_string(), expected, "labels {labels:?}");
        }
    }

    #[test]
    fn ips_must_lie_in_requested_subnets() {
        let subnets: Vec<IpNet> = vec![
            "198.51.100.0/24".parse().unwrap(),
            "2001:db8:100::/64".parse().unwrap(),
        ];
        let inside: Vec<IpAddr> = vec![
            "198.51.100.7".parse().unwrap(),
            "2001:db8:100::7".parse().unwrap(),
        ];
        let outside: Vec<IpAddr> = vec![
            "198.51.100.7".parse().unwrap(),
            "203.0.113.7".parse().unwrap(),
        ];

        assert_eq!(check_ips_in_subnets(&inside, &subnets), Ok(()));
        assert_eq!(check_ips_in_subnets(&[], &[]), Ok(()));
        let err = check_ips_in_subnets(&outside, &subnets).unwrap_err();
        assert_eq!(
            err.to_string(),
            "label clampify.ips: 203.0.113.7 is in no subnet of the requested networks: request an address of one of their subnets"
        );
    }

    #[test]
    fn host_mode_skips_before_label_errors() {
        let labels = labels(&[(NETWORKS_LABEL, ",")]);

        let decision = evaluate(&labels, &NetworkMode::Host, &[]).unwrap();

        assert_eq!(decision, Decision::Skip(SkipReason::HostNetwork));
    }

    fn network() -> ResolvedNetwork {
        ResolvedNetwork {
            id: "3f2a9c1e-0d4b-4c55-9a43-5b8f0e7d1c22".into(),
            name: "private".into(),
            project_id: "9b1d4e6f2a3c4d5e8f7a6b5c4d3e2f1a".into(),
        }
    }

    #[test]
    fn empty_policy_allows_all() {
        let result = Policy::default().check("private", NetworkSource::Label, &network());

        assert_eq!(result, Ok(()));
    }

    #[test]
    fn policy_matches_network_name_or_id() {
        for allowed in ["private", "3f2a9c1e-0d4b-4c55-9a43-5b8f0e7d1c22"] {
            let policy = Policy {
                allowed_networks: strings(&["other", allowed]),
                ..Policy::default()
            };

            let result = policy.check("private", NetworkSource::Label, &network());

            assert_eq!(result, Ok(()), "allowed_networks entry {allowed}");
        }
    }

    #[test]
    fn policy_rejects_unlisted_network() {
        let policy = Policy {
            allowed_networks: strings(&["public"]),
            ..Policy::default()
        };

        let err = policy
            .check("private", NetworkSource::Label, &network())
            .unwrap_err();

        assert_eq!(
            err.to_string(),
            "label clampify.networks: network \"private\" (3f2a9c1e-0d4b-4c55-9a43-5b8f0e7d1c22) is not in the policy's allowed_networks: add it there or request another network"
        );
    }

    #[test]
    fn policy_rejects_foreign_project() {
        let policy = Policy {
            allowed_networks: strings(&["private"]),
            allowed_projects: strings(&["0a0b0c0d0e0f40418283848586878889"]),
        };

        let err = policy
            .check("private", NetworkSource::Default, &network())
            .unwrap_err();

        assert_eq!(
            err.to_string(),
            "the agent's default networks: network \"private\" (3f2a9c1e-0d4b-4c55-9a43-5b8f0e7d1c22) belongs to project 9b1d4e6f2a3c4d5e8f7a6b5c4d3e2f1a, which is not in the policy's allowed_projects"
        );
    }

    #[test]
    fn policy_accepts_listed_project() {
        let policy = Policy {
            allowed_projects: strings(&["9b1d4e6f2a3c4d5e8f7a6b5c4d3e2f1a"]),
            ..Policy::default()
        };

        let result = policy.check("private", NetworkSource::Label, &network());

        assert_eq!(result, Ok(()));
    }
}
