//! resolv.conf files for namespaces and containers.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::IpAddr;
use std::path::Path;

/// Writes `servers` as the `nameserver` lines of the resolv.conf at `path`.
///
/// Other lines of an existing file (`search`, `options`) are kept, so a container keeps the
/// search domains Docker gave it. The parent directory is created when missing, which
/// `/etc/netns/NAME/` needs.
///
/// An existing file is rewritten in place, keeping its inode, because Docker bind-mounts it
/// into the container as `/etc/resolv.conf`: a file replaced by a rename is never seen
/// there. NOTE: a reader that opens the file during the write may see part of the old text.
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
    // Writing first and truncating after means a reader never sees an empty file.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.set_len(text.len() as u64)
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

    #[test]
    fn write_keeps_inode_of_existing_file() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        let old = "nameserver 10.255.255.53\n".repeat(20) + "search example.test\n";
        std::fs::write(&path, old).unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();

        write_resolv_conf(&path, &["198.51.100.53".parse().unwrap()]).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
        assert!(text.starts_with("# written by clampify"), "{text}");
        assert!(!text.contains("10.255.255.53"), "{text}");
        assert!(
            text.ends_with("nameserver 198.51.100.53\nsearch example.test\n"),
            "{text}"
        );
    }
}
