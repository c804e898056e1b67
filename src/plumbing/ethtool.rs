//! The one ethtool setting Clampify changes, through the legacy SIOCETHTOOL ioctl because
//! rtnetlink has no attribute for offload features.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

use super::link::MAX_IFNAME_LEN;

/// `ETHTOOL_STXCSUM` from include/uapi/linux/ethtool.h: set TX checksum offload on or off.
const ETHTOOL_STXCSUM: u32 = 0x0000_0017;

/// `struct ethtool_value` from include/uapi/linux/ethtool.h.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// Opens a socket for ethtool ioctls. The ioctl acts on interfaces of the network namespace
/// where the socket was created, not that of the calling thread.
pub(crate) fn control_socket() -> io::Result<OwnedFd> {
    Ok(socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?)
}

/// Turns TX checksum offload off on `ifname`, as `ethtool -K IFNAME tx off` does. The kernel
/// also turns off the features that depend on it, such as TSO.
pub(crate) fn disable_tx_checksum(socket: BorrowedFd<'_>, ifname: &str) -> io::Result<()> {
    if ifname.is_empty() || ifname.len() > MAX_IFNAME_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name must be 1 to 15 bytes",
        ));
    }
    let mut value = EthtoolValue {
        cmd: ETHTOOL_STXCSUM,
        data: 0,
    };

    // SAFETY: `ifreq` is plain C data (a name array and a union of integers, arrays and a
    // pointer), for which all-zero bytes are a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    // The name fits with room for the NUL that the zeroed array already holds.
    for (slot, byte) in request.ifr_name.iter_mut().zip(ifname.bytes()) {
        *slot = byte as libc::c_char;
    }
    request.ifr_ifru.ifru_data = (&raw mut value).cast();

    // SAFETY: `socket` is an open descriptor, `request` is a valid ifreq whose name is
    // NUL-terminated, and its data pointer refers to `value`, an ethtool_value that outlives
    // this synchronous call. SIOCETHTOOL with ETHTOOL_STXCSUM reads only those two structs.
    let result = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCETHTOOL, &mut request) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
