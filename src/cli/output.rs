//! What the commands print on stdout: a short text for people, or JSON with `--json`.

#![allow(clippy::print_stdout)] // printing results is this module's job

use serde::Serialize;

use clampify::attach::Attachment;

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
        "PORT", "NETNS", "IFACE", "STATUS", "OVS", "LINK"
    );
    for entry in entries {
        let netns = entry
            .netns
            .clone()
            .unwrap_or_else(|| short(&entry.device_id));
        println!(
            "{:<36}  {:<20}  {:<6}  {:<8}  {:<5}  {:<4}  {}",
            entry.port_id,
            netns,
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

fn short(device_id: &str) -> String {
    device_id.chars().take(20).collect()
}
