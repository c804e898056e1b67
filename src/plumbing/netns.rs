//! Network namespaces: named ones as `ip netns` manages them, and the single place where a
//! thread enters one.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;
use tokio::sync::oneshot;

use super::PlumbingError;

/// Directory where `ip netns` (iproute2) keeps one bind mount per named namespace.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Maximum length in bytes of a name that `ip netns` accepts: NAME_MAX, because the name is a
/// file name.
pub const MAX_NETNS_NAME_LEN: usize = 255;

/// A network namespace, identified by a file that refers to it: `/run/netns/NAME` for a
/// named one, `/proc/PID/ns/net` for a process, or any other nsfs file or bind mount.
///
/// The value is only a path: nothing is opened until an operation needs the namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Netns {
    path: PathBuf,
}

impl Netns {
    /// Returns the named namespace `/run/netns/NAME`, after checking the name as `ip netns` does.
    /// The namespace itself may not exist yet.
    pub fn named(name: &str) -> Result<Self, PlumbingError> {
        validate_name(name)?;
        Ok(Self {
            path: Path::new(NETNS_RUN_DIR).join(name),
        })
    }

    /// Returns the namespace of process `pid`. It lives only as long as the process, and the pid can
    /// be reused, so callers that keep it must check the process is still the one they meant.
    pub fn of_pid(pid: u32) -> Self {
        Self {
            path: PathBuf::from(format!("/proc/{pid}/ns/net")),
        }
    }

    /// Returns the namespace that the file at `path` refers to, such as a Docker `SandboxKey`.
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the namespace file; the descriptor keeps the namespace alive while it is open.
    pub(crate) fn open(&self) -> Result<File, PlumbingError> {
        File::open(&self.path).map_err(|source| PlumbingError::OpenNetns {
            path: self.path.clone(),
            source,
        })
    }
}

impl fmt::Display for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.path.display().fmt(f)
    }
}

/// Rejects what `ip netns` rejects: an empty name, one longer than NAME_MAX, a `/`, `.` and
/// `..` (iproute2 `ip/ipnetns.c`, `invalid_name`). NUL is rejected too, because no path can
/// contain it.
fn validate_name(name: &str) -> Result<(), PlumbingError> {
    let reason = if name.is_empty() {
        "the name is empty"
    } else if name.len() > MAX_NETNS_NAME_LEN {
        "the name is longer than 255 bytes"
    } else if name.contains('/') {
        "the name contains '/'"
    } else if name.contains('\0') {
        "the name contains a NUL byte"
    } else if name == "." || name == ".." {
        "the name is '.' or '..'"
    } else {
        return Ok(());
    };
    Err(PlumbingError::InvalidNetnsName {
        name: name.to_owned(),
        reason,
    })
}

/// Runs `work` on a new OS thread that has joined `netns`, blocks until it returns, and
/// returns its result.
///
/// setns(2) moves only the calling thread, and a pooled thread (a Tokio worker or the
/// `spawn_blocking` pool) would keep the namespace for whatever it runs next, so the thread
/// here is created for `work` and exits with it. Sockets opened by `work` stay in `netns`
/// after the thread ends, which is how callers get a netlink connection into a namespace.
/// In async code, use [`in_netns_async`] so the worker is not blocked.
pub fn in_netns<T, F>(netns: &Netns, work: F) -> Result<T, PlumbingError>
where
    F: FnOnce() -> Result<T, PlumbingError> + Send + 'static,
    T: Send + 'static,
{
    let thread = spawn_in_netns(netns, work)?;
    thread
        .join()
        .map_err(|_| PlumbingError::NetnsThreadPanicked {
            path: netns.path.clone(),
        })?
}

/// Like [`in_netns`], but awaits the thread's result instead of blocking the caller.
pub async fn in_netns_async<T, F>(netns: &Netns, work: F) -> Result<T, PlumbingError>
where
    F: FnOnce() -> Result<T, PlumbingError> + Send + 'static,
    T: Send + 'static,
{
    let (sender, receiver) = oneshot::channel();
    spawn_in_netns(netns, move || {
        // The receiver is gone only if the caller was cancelled; the result is then unused.
        let _ = sender.send(work());
        Ok(())
    })?;
    receiver
        .await
        .map_err(|_| PlumbingError::NetnsThreadPanicked {
            path: netns.path.clone(),
        })?
}

/// Starts the thread for [`in_netns`] and [`in_netns_async`]: the only setns call site.
fn spawn_in_netns<T, F>(
    netns: &Netns,
    work: F,
) -> Result<std::thread::JoinHandle<Result<T, PlumbingError>>, PlumbingError>
where
    F: FnOnce() -> Result<T, PlumbingError> + Send + 'static,
    T: Send + 'static,
{
    let target = netns.open()?;
    let path = netns.path.clone();
    let thread_path = path.clone();
    std::thread::Builder::new()
        .name("clampify-netns".to_owned())
        .spawn(move || {
            #[allow(clippy::disallowed_methods)] // the one sanctioned setns call site
            nix::sched::setns(&target, CloneFlags::CLONE_NEWNET).map_err(|errno| {
                PlumbingError::EnterNetns {
                    path: thread_path,
                    source: errno.into(),
                }
            })?;
            work()
        })
        .map_err(|source| PlumbingError::SpawnNetnsThread { path, source })
}

/// Makes sure the named namespace `/run/netns/NAME` exists, creating it the way `ip netns add`
/// does so that `ip netns` and other tools see it. Returns the namespace and whether this call
/// created it.
///
/// A file left at the path by an interrupted creation (a plain file, not a namespace mount)
/// gets a new namespace mounted on it.
pub fn ensure_named(name: &str) -> Result<(Netns, bool), PlumbingError> {
    let netns = Netns::named(name)?;
    let create_error = |step, source| PlumbingError::CreateNetns {
        name: name.to_owned(),
        step,
        source,
    };

    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(NETNS_RUN_DIR)
        .map_err(|source| create_error("create /run/netns", source))?;
    make_run_dir_shared()
        .map_err(|source| create_error("make /run/netns a shared mount", source))?;

    match OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(&netns.path)
    {
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            if is_netns_mount(&netns.path)
                .map_err(|source| create_error("inspect the existing file", source))?
            {
                return Ok((netns, false));
            }
            // NOTE: two callers racing on the same leftover file can both mount on it. The
            // second mount hides the first, so `delete_named` then has to run twice.
        }
        Err(source) => return Err(create_error("create the namespace file", source)),
    }

    if let Err(error) = mount_new_netns(&netns.path) {
        let _ = fs::remove_file(&netns.path);
        return Err(create_error(error.0, error.1));
    }
    Ok((netns, true))
}

/// Lets mounts under /run/netns propagate between mount namespaces, as iproute2 does, so an
/// unmount in one mount namespace reaches the copies in the others and the network
/// namespace can be freed. The flock serialises this with `ip netns add`, because parallel
/// runs stack bind mounts on /run/netns (Debian bug 949235).
fn make_run_dir_shared() -> io::Result<()> {
    let dir = File::open(NETNS_RUN_DIR)?;
    // An flock failure is not fatal, as in iproute2: the lock only avoids a rare race.
    let _lock = Flock::lock(dir, FlockArg::LockExclusive).ok();

    let none: Option<&str> = None;
    let mut made_mount_point = false;
    loop {
        match mount(
            none,
            NETNS_RUN_DIR,
            Some("none"),
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            none,
        ) {
            Ok(()) => return Ok(()),
            // EINVAL: /run/netns is not a mount point yet; bind it onto itself once.
            Err(Errno::EINVAL) if !made_mount_point => {
                let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
                mount(
                    Some(NETNS_RUN_DIR),
                    NETNS_RUN_DIR,
                    Some("none"),
                    flags,
                    none,
                )?;
                made_mount_point = true;
            }
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// Tells whether `path` is a bind mount of a namespace (an nsfs file) rather than a plain file.
fn is_netns_mount(path: &Path) -> io::Result<bool> {
    let stat = nix::sys::statfs::statfs(path)?;
    Ok(stat.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}

/// Creates a network namespace on a throwaway thread and bind-mounts it onto `path`. On
/// error, returns the step that failed with its cause.
fn mount_new_netns(path: &Path) -> Result<(), (&'static str, io::Error)> {
    let path = path.to_owned();
    let thread = std::thread::Builder::new()
        .name("clampify-netns".to_owned())
        .spawn(move || {
            // unshare(CLONE_NEWNET) moves only this thread, which exits right after the
            // mount; the mount then keeps the namespace alive.
            #[allow(clippy::disallowed_methods)] // the one sanctioned unshare call site
            nix::sched::unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|errno| ("unshare(CLONE_NEWNET)", errno.into()))?;
            let own_netns = format!("/proc/self/task/{}/ns/net", nix::unistd::gettid());
            let none: Option<&str> = None;
            mount(
                Some(own_netns.as_str()),
                &path,
                Some("none"),
                MsFlags::MS_BIND,
                none,
            )
            .map_err(|errno| ("bind-mount the new namespace", errno.into()))
        })
        .map_err(|error| ("start a thread", error))?;
    thread
        .join()
        .map_err(|_| ("join the thread", io::Error::other("thread panicked")))?
}

/// Deletes the named namespace as `ip netns delete` does: detaches the mount, then removes
/// the file. Returns false when there was nothing to delete. Processes and open descriptors
/// still in the namespace keep it alive; only the name goes.
pub fn delete_named(name: &str) -> Result<bool, PlumbingError> {
    let netns = Netns::named(name)?;
    let delete_error = |step, source| PlumbingError::DeleteNetns {
        name: name.to_owned(),
        step,
        source,
    };

    let unmounted = match umount2(&netns.path, MntFlags::MNT_DETACH) {
        Ok(()) => true,
        Err(Errno::EINVAL) => false, // a plain file: not mounted
        Err(Errno::ENOENT) => return Ok(false),
        Err(errno) => return Err(delete_error("unmount", errno.into())),
    };
    match fs::remove_file(&netns.path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(unmounted),
        Err(source) => Err(delete_error("remove the file", source)),
    }
}

/// Writes `value` to `/proc/sys/KEY` as seen from `netns`, for settings that rtnetlink cannot
/// change, such as the per-interface IPv6 ones. `key` is a path below /proc/sys/net, for
/// example `net/ipv6/conf/eth0/accept_dad`.
pub async fn write_sysctl(netns: &Netns, key: &str, value: &str) -> Result<(), PlumbingError> {
    validate_sysctl_key(key)?;
    // /proc/sys/net resolves against the network namespace of the thread that opens it.
    let path = Path::new("/proc/sys").join(key);
    let value = value.to_owned();
    let error_netns = netns.path.clone();
    let error_key = key.to_owned();
    in_netns_async(netns, move || {
        fs::write(&path, value).map_err(|source| PlumbingError::WriteSysctl {
            netns: error_netns,
            key: error_key,
            source,
        })
    })
    .await
}

fn validate_sysctl_key(key: &str) -> Result<(), PlumbingError> {
    let reason = if !key.starts_with("net/") {
        "expected a path below net/, such as net/ipv6/conf/eth0/accept_dad"
    } else if key
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        "the path has an empty, '.' or '..' component"
    } else {
        return Ok(());
    };
    Err(PlumbingError::InvalidSysctlKey {
        key: key.to_owned(),
        reason,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn named_netns_lives_under_run_netns() {
        let netns = Netns::named("blue").unwrap();
        assert_eq!(netns.path(), Path::new("/run/netns/blue"));
    }

    #[test]
    fn netns_names_rejected_like_iproute2() {
        let long = "x".repeat(MAX_NETNS_NAME_LEN + 1);
        for name in ["", ".", "..", "a/b", "/abs", "nul\0", long.as_str()] {
            let error = Netns::named(name).unwrap_err();
            assert!(
                matches!(error, PlumbingError::InvalidNetnsName { .. }),
                "{name:?}: {error}"
            );
        }
    }

    #[test]
    fn netns_names_accepted_like_iproute2() {
        let longest = "x".repeat(MAX_NETNS_NAME_LEN);
        for name in [
            "a",
            "cfy-1",
            "with space",
            "ünïcode",
            "...",
            ".hidden",
            longest.as_str(),
        ] {
            assert!(Netns::named(name).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn invalid_netns_name_message() {
        let error = Netns::named("a/b").unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"invalid network namespace name "a/b": the name contains '/'"#
        );
    }

    #[test]
    fn pid_netns_path() {
        assert_eq!(Netns::of_pid(42).path(), Path::new("/proc/42/ns/net"));
    }

    #[test]
    fn sysctl_keys_checked() {
        assert!(validate_sysctl_key("net/ipv6/conf/eth0/accept_dad").is_ok());
        assert!(validate_sysctl_key("kernel/hostname").is_err());
        assert!(validate_sysctl_key("net/../kernel/hostname").is_err());
        assert!(validate_sysctl_key("net//ipv4").is_err());
    }
}
