//! What the commands print on stdout: a short text for people, or JSON with `--json`.

#![allow(clippy::print_stdout)] // printing results is this module's job

use serde::Serialize;

use clampify::attach::{Attachment, SPARE_DEVICE_ID};

use super::Settings;

/// One row of `clampify list`.
#[derive(Debug, Serialize)]
pub struct ListEntry {
    pub port_id: String,
    pub network_id: String,
    pub device_id: String,
    /// Name of the container that owns the port, when Docker returns it.
    pub container: Option<String>,
    pub netns: Option<String>,
    pub interface: Option<String>,
    pub ip_addresses: Vec<String>,
    /// Neutron's port status.
    pub status: String,
    /// Whether the port's row exists on the integration bridge.
    pub ovs_port: bool,
    /// Whether the host end of the veth pair exists.
    pub link: bool,
}

pub fn attachment(settings: &Settings, attachment: &Attachment) -> anyhow::Result<()> {
    if settings.json {
        println!("{}", serde_json::to_string(attachment)?);
    } else {
        println!(
            "{} {} port {} ({}, {})",
            attachment.interface,
            attachment.ip_addresses.join(" "),
            attachment.port_id,
            attachment.netns,
            attachment.status
        );
    }
    Ok(())
}

/// Prints a one-line outcome; with `--json`, `{"message": ..., "port_id": ...}`.
pub fn message(settings: &Settings, text: &str, port_id: &str) -> anyhow::Result<()> {
    if settings.json {
        println!(
            "{}",
            serde_json::json!({ "message": text, "port_id": port_id })
        );
    } else {
        println!("{text}");
    }
    Ok(())
}

pub fn list(settings: &Settings, entries: &[ListEntry]) -> anyhow::Result<()> {
    if settings.json {
        println!("{}", serde_json::to_string(entries)?);
        return Ok(());
    }
    println!(
        "{:<36}  {:<20}  {:<6}  {:<8}  {:<5}  {:<4}  IP ADDRESSES",
        "PORT", "FOR", "IFACE", "STATUS", "OVS", "LINK"
    );
    for entry in entries {
        println!(
            "{:<36}  {:<20}  {:<6}  {:<8}  {:<5}  {:<4}  {}",
            entry.port_id,
            owner_label(entry),
            entry.interface.as_deref().unwrap_or("-"),
            entry.status,
            yes_no(entry.ovs_port),
            yes_no(entry.link),
            entry.ip_addresses.join(" ")
        );
    }
    Ok(())
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

/// Returns what the port serves, for the FOR column: the container's name, `spare` for a
/// spare port, the namespace of a `clampify create` port, or else the start of `device_id`.
fn owner_label(entry: &ListEntry) -> String {
    if let Some(container) = &entry.container {
        return container.clone();
    }
    if entry.device_id == SPARE_DEVICE_ID {
        return "spare".to_owned();
    }
    match &entry.netns {
        Some(netns) if !netns.starts_with('/') => netns.clone(),
        _ => entry.device_id.chars().take(20).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(device_id: &str, container: Option<&str>, netns: Option<&str>) -> ListEntry {
        ListEntry {
            port_id: "4312b826-10e5-4b00-9729-cbcf4a52a225".to_owned(),
            network_id: "842f87a4-4d39-4d9e-8f27-ff1ca12bd5ce".to_owned(),
            device_id: device_id.to_owned(),
            container: container.map(str::to_owned),
            netns: netns.map(str::to_owned),
            interface: None,
            ip_addresses: Vec::new(),
            status: "DOWN".to_owned(),
            ovs_port: false,
            link: false,
        }
    }

    #[test]
    fn owner_label_cases() {
        let id = "535bae994f1b20c897cc0a1b2c3d4e5f60718293a4b5c6d7e8f9000112233445";
        let cases = [
            (entry(id, Some("web"), Some("/proc/42/ns/net")), "web"),
            (entry(SPARE_DEVICE_ID, None, None), "spare"),
            (entry("netns:blue", None, Some("blue")), "blue"),
            (
                entry(id, None, Some("/proc/42/ns/net")),
                "535bae994f1b20c897cc",
            ),
            (entry(id, None, None), "535bae994f1b20c897cc"),
        ];

        for (entry, expected) in cases {
            assert_eq!(owner_label(&entry), expected, "{:?}", entry.device_id);
        }
    }
}
