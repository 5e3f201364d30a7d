//! Live Wi-Fi probe requests from a monitor-mode interface (Linux): an `AF_PACKET` raw socket on
//! the interface, every frame through the same radiotap/802.11 decoding pcap replay uses
//! ([`dwell_shared::wifi::pcap::decode_packet`]).
//!
//! Before opening the socket the interface is checked through sysfs, so the error says what to
//! do: it must exist (`/sys/class/net/IFACE`), be in monitor mode with radiotap headers
//! (`/sys/class/net/IFACE/type` is 803, `ARPHRD_IEEE80211_RADIOTAP`) and be up. The socket needs
//! `CAP_NET_RAW`. The interface index comes from `/sys/class/net/IFACE/ifindex`, so no
//! `if_nametoindex` call (and no `unsafe`) is needed for it.
//!
//! One [`Observation`] per probe request that carries a dBm signal; probe requests without one
//! (drivers that give no radiotap signal field) cannot be placed and are counted in
//! [`MonitorStats::without_signal`]; every other frame is counted too.

use super::{Observation, Radio, Scanner, SourceError};
use dwell_shared::wifi::pcap::decode_packet;
use std::path::PathBuf;
use std::sync::Arc;

/// The source's name in logs, metrics and errors.
pub const SOURCE_NAME: &str = "wifi";

/// `ARPHRD_IEEE80211_RADIOTAP`: a monitor-mode interface that prepends radiotap headers.
pub const ARPHRD_IEEE80211_RADIOTAP: u32 = 803;
/// `ARPHRD_IEEE80211`: monitor mode without radiotap (no signal level: useless for presence).
pub const ARPHRD_IEEE80211: u32 = 801;
/// `ARPHRD_ETHER`: a managed (station) Wi-Fi interface looks like Ethernet.
pub const ARPHRD_ETHER: u32 = 1;

/// What the monitor has read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonitorStats {
    pub frames: u64,
    pub probe_requests: u64,
    /// Probe requests without a dBm signal: not yielded.
    pub without_signal: u64,
    /// Every other frame, malformed ones included.
    pub other: u64,
}

fn fatal(reason: impl Into<String>) -> SourceError {
    SourceError::Fatal {
        source_name: SOURCE_NAME,
        reason: reason.into(),
    }
}

fn sys_net(interface: &str) -> PathBuf {
    PathBuf::from("/sys/class/net").join(interface)
}

fn read_sys_u32(interface: &str, file: &str) -> Option<u32> {
    let s = std::fs::read_to_string(sys_net(interface).join(file)).ok()?;
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// What sysfs says about an interface, as the source and `doctor` need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceInfo {
    pub ifindex: u32,
    /// `ARPHRD_*` link type.
    pub link_type: u32,
    /// `IFF_UP`.
    pub up: bool,
}

/// Checks `interface` is a usable monitor-mode interface; the error is the one-line cause and
/// fix.
pub fn check_interface(interface: &str) -> Result<InterfaceInfo, String> {
    if interface.is_empty() || interface.len() > 15 || interface.contains(['/', '\0']) {
        return Err(format!(
            "{interface:?} is not a network interface name: set `interface` to one `iw dev` lists"
        ));
    }
    if !sys_net(interface).exists() {
        return Err(format!(
            "no network interface {interface}: check `iw dev` / `ip link` and the `interface` \
             key of the wifi source"
        ));
    }
    let (Some(ifindex), Some(link_type)) = (
        read_sys_u32(interface, "ifindex"),
        read_sys_u32(interface, "type"),
    ) else {
        return Err(format!(
            "cannot read /sys/class/net/{interface}/ifindex or type: is /sys mounted?"
        ));
    };
    let monitor_fix = format!(
        "`iw dev {interface} set type monitor` (or `airmon-ng start {interface}`), then \
         `ip link set {interface} up`"
    );
    match link_type {
        ARPHRD_IEEE80211_RADIOTAP => {}
        ARPHRD_IEEE80211 => {
            return Err(format!(
                "{interface} is in monitor mode without radiotap headers (type 801), so frames \
                 carry no signal level: recreate it with {monitor_fix}"
            ));
        }
        t => {
            return Err(format!(
                "{interface} is not in monitor mode (link type {t}, not 803): {monitor_fix}"
            ));
        }
    }
    // IFF_UP = 0x1.
    let up = read_sys_u32(interface, "flags").is_some_and(|f| f & 0x1 != 0);
    if !up {
        return Err(format!(
            "{interface} is in monitor mode but down: `ip link set {interface} up`"
        ));
    }
    Ok(InterfaceInfo {
        ifindex,
        link_type,
        up,
    })
}

/// The one-line cause and fix for a failing `AF_PACKET` socket call.
pub fn socket_error_reason(interface: &str, e: &std::io::Error) -> String {
    #[cfg(target_os = "linux")]
    {
        match e.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => format!(
                "capturing on {interface} needs CAP_NET_RAW: run as root or \
                 `setcap cap_net_raw+ep /usr/bin/dwell-edge`"
            ),
            Some(libc::ENODEV | libc::ENXIO) => {
                format!("{interface} went away: check `iw dev` (was the adapter unplugged?)")
            }
            Some(libc::ENETDOWN) => format!("{interface} is down: `ip link set {interface} up`"),
            _ => format!("capturing on {interface}: {e}"),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        format!("capturing on {interface}: {e}: live Wi-Fi capture exists only on Linux")
    }
}

/// Decodes one frame read from the monitor socket at `ts_ms` (radiotap header first): the
/// observation for a probe request with a signal level, and the counters updated. The socket
/// loop and the tests both go through here.
pub fn decode_frame(
    frame: &[u8],
    ts_ms: i64,
    receiver: &Arc<str>,
    stats: &mut MonitorStats,
) -> Option<Observation> {
    stats.frames += 1;
    let Some(p) = decode_packet(true, ts_ms, frame) else {
        stats.other += 1;
        return None;
    };
    stats.probe_requests += 1;
    let Some(rssi) = p.rssi else {
        stats.without_signal += 1;
        return None;
    };
    Some(Observation {
        ts_ms,
        receiver: receiver.clone(),
        rssi,
        radio: Radio::Wifi { sa: p.sa },
    })
}

#[cfg(target_os = "linux")]
pub use linux::WifiMonitorSource;

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use crate::source::hci_socket::{register, unix_now_ms};
    use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};
    use std::io::{self, Read};
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    /// `ETH_P_ALL`: every protocol (a monitor interface's frames are not Ethernet anyway).
    const ETH_P_ALL: u16 = 0x0003;
    /// Largest frame read: an 802.11 MPDU is at most ~7.9 kB, plus radiotap.
    const READ_BUF: usize = 16 * 1024;

    /// `struct sockaddr_ll` for binding to one interface.
    fn sockaddr_ll(ifindex: u32) -> SockAddr {
        let mut storage = SockAddrStorage::zeroed();
        let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        #[allow(unsafe_code)]
        // SAFETY: `libc::sockaddr_ll` is the platform's sockaddr type of AF_PACKET sockets;
        // `view_as` asserts it fits the storage (zeroed, so the fields we do not set are 0). The
        // length given to `SockAddr::new` is its size and the family is AF_PACKET, so family,
        // length and contents agree as `SockAddr::new` requires.
        let addr = unsafe {
            let ll = storage.view_as::<libc::sockaddr_ll>();
            ll.sll_family = libc::AF_PACKET as libc::sa_family_t;
            ll.sll_protocol = ETH_P_ALL.to_be();
            ll.sll_ifindex = ifindex as libc::c_int;
            SockAddr::new(storage, len)
        };
        addr
    }

    /// Probe requests heard by a monitor-mode interface; see the module docs.
    #[derive(Debug)]
    pub struct WifiMonitorSource {
        interface: String,
        io: AsyncFd<Socket>,
        receiver: Arc<str>,
        buf: Box<[u8]>,
        stats: MonitorStats,
        failed: bool,
    }

    impl WifiMonitorSource {
        /// Checks the interface and opens the capture. Must run inside a tokio runtime. Errors
        /// are one line: cause and fix.
        pub fn open(interface: &str, receiver: &str) -> Result<Self, SourceError> {
            let info = check_interface(interface).map_err(fatal)?;
            let reason = |e: io::Error| fatal(socket_error_reason(interface, &e));
            let socket = Socket::new(
                Domain::PACKET,
                Type::RAW,
                Some(Protocol::from(i32::from(ETH_P_ALL.to_be()))),
            )
            .map_err(reason)?;
            socket.bind(&sockaddr_ll(info.ifindex)).map_err(reason)?;
            socket.set_nonblocking(true).map_err(reason)?;
            let io = register(socket).map_err(reason)?;
            tracing::info!(interface, "wifi: capturing probe requests");
            Ok(WifiMonitorSource {
                interface: interface.to_string(),
                io,
                receiver: Arc::from(receiver),
                buf: vec![0u8; READ_BUF].into_boxed_slice(),
                stats: MonitorStats::default(),
                failed: false,
            })
        }

        pub fn interface(&self) -> &str {
            &self.interface
        }

        pub fn stats(&self) -> MonitorStats {
            self.stats
        }

        pub async fn next_observation(&mut self) -> Option<Result<Observation, SourceError>> {
            loop {
                if self.failed {
                    return None;
                }
                let WifiMonitorSource { io, buf, .. } = self;
                let n = match io
                    .async_io(Interest::READABLE, |mut s: &Socket| s.read(buf))
                    .await
                {
                    Ok(n) => n,
                    Err(e) => {
                        self.failed = true;
                        return Some(Err(fatal(socket_error_reason(&self.interface, &e))));
                    }
                };
                if let Some(o) = decode_frame(
                    &self.buf[..n],
                    unix_now_ms(),
                    &self.receiver,
                    &mut self.stats,
                ) {
                    return Some(Ok(o));
                }
            }
        }
    }

    impl Scanner for WifiMonitorSource {
        fn name(&self) -> &'static str {
            SOURCE_NAME
        }
        async fn next(&mut self) -> Option<Result<Observation, SourceError>> {
            self.next_observation().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused_before_touching_sysfs() {
        for name in ["", "../etc", "a-very-long-interface-name"] {
            let e = check_interface(name).unwrap_err();
            assert!(e.contains("iw dev"), "{e}");
        }
    }

    #[test]
    fn a_frame_that_is_not_a_probe_request_is_counted() {
        let mut st = MonitorStats::default();
        assert!(decode_frame(&[0, 0, 8, 0, 0, 0, 0, 0], 1, &Arc::from("gw"), &mut st).is_none());
        assert_eq!(
            st,
            MonitorStats {
                frames: 1,
                other: 1,
                ..MonitorStats::default()
            }
        );
    }
}
