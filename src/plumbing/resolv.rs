//! resolv.conf files for namespaces and containers.

use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;
use std::path::Path;

/// Writes `servers` as the `nameserver` lines of the resolv.conf at `path`.
///
/// Other lines of an existing file (`search`, `options`) are kept, so a container keeps the
/// search domains Docker gave it. The parent directory is created when missing, which
/// `/etc/netns/NAME/` needs. The file is replaced by a rename, so a reader never sees half of it.
pub fn write_resolv_conf(path: &Path, servers: &[IpAddr]) -> io::Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => String::new(),
        Err(err) => return Err(err),
    };
    let text = render(&existing, servers);

    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let temporary = path.with_extension("clampify-tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

fn render(existing: &str, servers: &[IpAddr]) -> String {
    let mut text =
        String::from("# written by clampify from the Neutron subnets' dns_nameservers\n");
    for server in servers {
        let _ = writeln!(text, "nameserver {server}");
    }
    for line in existing.lines() {
        let keyword = line.split_whitespace().next().unwrap_or("");
        if keyword == "search" || keyword == "options" || keyword == "domain" {
            let _ = writeln!(text, "{line}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_replaces_nameservers_keeps_search() {
        let existing = "nameserver 127.0.0.11\nsearch example.test\noptions ndots:0\n";
        let servers: Vec<IpAddr> = vec![
            "198.51.100.53".parse().unwrap(),
            "2001:db8::53".parse().unwrap(),
        ];

        let text = render(existing, &servers);

        assert!(text.contains("nameserver 198.51.100.53\n"), "{text}");
        assert!(text.contains("nameserver 2001:db8::53\n"), "{text}");
        assert!(!text.contains("127.0.0.11"), "{text}");
        assert!(text.contains("search example.test\n"), "{text}");
        assert!(text.contains("options ndots:0\n"), "{text}");
    }

    #[test]
    fn write_creates_parent_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netns-x").join("resolv.conf");

        write_resolv_conf(&path, &["198.51.100.53".parse().unwrap()]).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("nameserver 198.51.100.53"), "{text}");
    }
}
