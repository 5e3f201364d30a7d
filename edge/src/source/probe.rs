//! What `dwell-edge doctor` says about the radios: can this host scan BLE and capture Wi-Fi, with
//! which backend, and what to fix if not.
//!
//! Each probe returns [`Check`]s — a name, a status (ok / warn / fail), what was found, and for
//! anything not ok the fix. The probes only look: sysfs, `/proc/self/status`, opening (never
//! binding) a socket, and with the `bluez` feature a bounded D-Bus call. Binding the HCI user
//! channel would take the adapter away from BlueZ, so the probe infers it from the adapter,
//! the kernel and the capabilities instead.
//!
//! The BLE backend: raw HCI (the kernel's user channel, duplicate filtering off) is preferred,
//! because BlueZ and the kernel de-duplicate advertisements and RSSI updates stall
//! (see [`btleplug`](super::btleplug)); btleplug over BlueZ is the fallback when the user channel
//! cannot be had (no `CAP_NET_ADMIN`, or BlueZ must keep the adapter).

use super::btleplug::{self as bl, SYSTEM_BUS_SOCKET};
use super::wifi_monitor;
use crate::config::SourceConfig;
use std::fmt;
use std::path::Path;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One line of `doctor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do; `None` when nothing needs doing.
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name: name.into(),
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name: name.into(),
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

impl fmt::Display for Check {
    /// `[FAIL] bluetooth adapters: none in /sys/class/bluetooth — fix: plug one in …`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] {}: {}",
            self.status.label(),
            self.name,
            self.detail
        )?;
        if let Some(fix) = &self.fix {
            write!(f, " — fix: {fix}")?;
        }
        Ok(())
    }
}

/// Effective capabilities of this process, from `/proc/self/status` (`CapEff`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub net_admin: bool,
    pub net_raw: bool,
}

/// Bit of `CAP_NET_ADMIN` in the capability sets.
pub const CAP_NET_ADMIN: u32 = 12;
/// Bit of `CAP_NET_RAW`.
pub const CAP_NET_RAW: u32 = 13;

/// Reads `CapEff` from the text of a `/proc/<pid>/status` file.
pub fn parse_capabilities(status: &str) -> Option<Capabilities> {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    let eff = u64::from_str_radix(hex, 16).ok()?;
    Some(Capabilities {
        net_admin: eff & (1 << CAP_NET_ADMIN) != 0,
        net_raw: eff & (1 << CAP_NET_RAW) != 0,
    })
}

/// This process's capabilities; `None` where `/proc` cannot be read (not Linux).
pub fn capabilities() -> Option<Capabilities> {
    parse_capabilities(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// The `hciN` entries of `/sys/class/bluetooth`; `None` if the directory is missing.
pub fn hci_devices(sys_class_bluetooth: &Path) -> Option<Vec<String>> {
    let rd = std::fs::read_dir(sys_class_bluetooth).ok()?;
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // hci0, not hci0:256 (connection entries).
        .filter(|n| n.starts_with("hci") && !n.contains(':'))
        .collect();
    v.sort();
    Some(v)
}

/// Bluetooth rfkill switches that are on (`/sys/class/rfkill/*`): `(name, hard)`.
fn rfkill_blocked() -> Vec<(String, bool)> {
    let Ok(rd) = std::fs::read_dir("/sys/class/rfkill") else {
        return Vec::new();
    };
    let read = |p: &Path, f: &str| {
        std::fs::read_to_string(p.join(f))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    rd.filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| read(p, "type") == "bluetooth")
        .filter_map(|p| {
            let hard = read(&p, "hard") == "1";
            (hard || read(&p, "soft") == "1").then(|| (read(&p, "name"), hard))
        })
        .collect()
}

/// Whether an `AF_BLUETOOTH` raw HCI socket can be opened (not bound): the kernel's support.
fn af_bluetooth(device: u16) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        super::hci_socket::raw_hci_socket()
            .map(drop)
            .map_err(|e| super::hci_socket::open_error_reason(device, &e))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = device;
        Err("raw HCI sockets exist only on Linux".to_string())
    }
}

/// What BlueZ said, when asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bluez {
    /// Built without the `bluez` feature: not asked.
    NotBuilt,
    /// BlueZ answered and lists these adapters.
    Adapters(Vec<String>),
    /// The one-line reason it could not be reached.
    Unreachable(String),
}

/// Asks BlueZ for its adapters (with the `bluez` feature), bounded by [`bl::DBUS_TIMEOUT`]. Runs
/// on its own thread and runtime, so it can be called from sync code and from inside a runtime.
pub fn ask_bluez() -> Bluez {
    #[cfg(feature = "bluez")]
    {
        let run = || -> Bluez {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return Bluez::Unreachable(format!("cannot start a runtime: {e}")),
            };
            rt.block_on(async {
                let m = match bl::connect().await {
                    Ok(m) => m,
                    Err(e) => return Bluez::Unreachable(fatal_reason(e)),
                };
                match bl::adapters(&m).await {
                    Ok(a) => Bluez::Adapters(a.into_iter().map(|(id, _)| id).collect()),
                    Err(e) => Bluez::Unreachable(fatal_reason(e)),
                }
            })
        };
        std::thread::scope(|s| {
            s.spawn(run)
                .join()
                .unwrap_or_else(|_| Bluez::Unreachable("the BlueZ probe panicked".into()))
        })
    }
    #[cfg(not(feature = "bluez"))]
    {
        Bluez::NotBuilt
    }
}

#[cfg(feature = "bluez")]
fn fatal_reason(e: super::SourceError) -> String {
    match e {
        super::SourceError::Fatal { reason, .. } | super::SourceError::BadRecord { reason, .. } => {
            reason
        }
    }
}

/// Everything the Bluetooth checks look at, gathered once (and constructible in tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BluetoothFacts {
    /// The adapter the HCI backend would use.
    pub device: u16,
    /// `hciN` in `/sys/class/bluetooth`; `None` when the directory is missing.
    pub adapters: Option<Vec<String>>,
    /// Bluetooth rfkill switches that are on: `(name, hard)`.
    pub rfkill: Vec<(String, bool)>,
    /// Opening an `AF_BLUETOOTH` socket: ok, or the reason.
    pub af_bluetooth: Result<(), String>,
    pub caps: Option<Capabilities>,
    /// Whether the D-Bus system bus socket exists.
    pub system_bus: bool,
    pub bluez: Bluez,
    /// Which BLE backend the configuration asks for: `hci`, `btleplug`, or none.
    pub configured: Option<&'static str>,
}

impl BluetoothFacts {
    /// Looks at this host, for the BLE sources in `sources` (or `hci0` if there are none).
    pub fn gather(sources: &[SourceConfig]) -> BluetoothFacts {
        let (device, configured) = sources
            .iter()
            .find_map(|s| match s {
                SourceConfig::Hci { device, .. } => Some((*device, Some("hci"))),
                SourceConfig::Btleplug { .. } => Some((0, Some("btleplug"))),
                _ => None,
            })
            .unwrap_or((0, None));
        BluetoothFacts {
            device,
            adapters: hci_devices(Path::new("/sys/class/bluetooth")),
            rfkill: rfkill_blocked(),
            af_bluetooth: af_bluetooth(device),
            caps: capabilities(),
            system_bus: Path::new(SYSTEM_BUS_SOCKET).exists(),
            bluez: ask_bluez(),
            configured,
        }
    }
}

const SETCAP_ADMIN: &str = "run as root, or `setcap cap_net_admin+ep /usr/bin/dwell-edge` \
     (the systemd unit grants it with AmbientCapabilities=CAP_NET_ADMIN)";
const SETCAP_RAW: &str = "run as root, or `setcap cap_net_raw+ep /usr/bin/dwell-edge` \
     (the systemd unit grants it with AmbientCapabilities=CAP_NET_RAW)";

/// The Bluetooth checks for `doctor`: adapters, rfkill, kernel support, capability, D-Bus,
/// BlueZ, and which backend will be used and why.
pub fn bluetooth(sources: &[SourceConfig]) -> Vec<Check> {
    bluetooth_checks(&BluetoothFacts::gather(sources))
}

/// The checks for already gathered facts.
pub fn bluetooth_checks(f: &BluetoothFacts) -> Vec<Check> {
    let mut out = Vec::new();
    let want = format!("hci{}", f.device);
    let adapter_present = match &f.adapters {
        None => {
            out.push(Check::fail(
                "bluetooth adapters",
                "no /sys/class/bluetooth: this kernel has no Bluetooth support, or never saw an adapter",
                "plug in a Bluetooth adapter; load the drivers (`modprobe bluetooth btusb`); check `dmesg | grep -i bluetooth`",
            ));
            false
        }
        Some(v) if v.is_empty() => {
            out.push(Check::fail(
                "bluetooth adapters",
                "/sys/class/bluetooth is empty",
                "plug in a Bluetooth adapter; check `dmesg | grep -i bluetooth` and `lsusb`",
            ));
            false
        }
        Some(v) if !v.contains(&want) => {
            out.push(Check::fail(
                "bluetooth adapters",
                format!("{want} is not present (found {})", v.join(", ")),
                format!("set `device` of the hci source to one of: {}", v.join(", ")),
            ));
            false
        }
        Some(v) => {
            out.push(Check::ok("bluetooth adapters", v.join(", ")));
            true
        }
    };
    for (name, hard) in &f.rfkill {
        out.push(Check::fail(
            "rfkill",
            format!("{name} is {} blocked", if *hard { "hard" } else { "soft" }),
            if *hard {
                "a hardware switch or the BIOS disables Bluetooth: turn it on".to_string()
            } else {
                "`rfkill unblock bluetooth`".to_string()
            },
        ));
    }
    let kernel_ok = match &f.af_bluetooth {
        Ok(()) => {
            out.push(Check::ok(
                "AF_BLUETOOTH socket",
                "the kernel opens raw HCI sockets",
            ));
            true
        }
        Err(reason) => {
            out.push(Check::fail(
                "AF_BLUETOOTH socket",
                "cannot open a raw HCI socket",
                reason.clone(),
            ));
            false
        }
    };
    let net_admin = match f.caps {
        Some(c) if c.net_admin => {
            out.push(Check::ok(
                "CAP_NET_ADMIN",
                "held (needed for the HCI user channel)",
            ));
            true
        }
        Some(_) => {
            out.push(Check::fail(
                "CAP_NET_ADMIN",
                "not held: the HCI user channel cannot be bound",
                SETCAP_ADMIN,
            ));
            false
        }
        None => {
            out.push(Check::warn(
                "CAP_NET_ADMIN",
                "cannot read /proc/self/status",
                "run on Linux with /proc mounted",
            ));
            false
        }
    };
    if f.system_bus {
        out.push(Check::ok(
            "D-Bus system bus",
            format!("{SYSTEM_BUS_SOCKET} present"),
        ));
    } else {
        out.push(Check::warn(
            "D-Bus system bus",
            format!("{SYSTEM_BUS_SOCKET} missing (only the btleplug backend needs it)"),
            bl::reason::NO_SYSTEM_BUS,
        ));
    }
    let bluez_ok = match &f.bluez {
        Bluez::NotBuilt => {
            out.push(Check::ok(
                "BlueZ",
                "not asked: built without the `bluez` feature (the raw HCI backend does not need it)",
            ));
            false
        }
        Bluez::Adapters(a) if a.is_empty() => {
            out.push(Check::warn(
                "BlueZ",
                "running, but it lists no adapter",
                bl::reason::NO_ADAPTER,
            ));
            false
        }
        Bluez::Adapters(a) => {
            out.push(Check::ok(
                "BlueZ",
                format!("running; adapters {}", a.join(", ")),
            ));
            true
        }
        Bluez::Unreachable(reason) => {
            out.push(Check::warn(
                "BlueZ",
                "not reachable over D-Bus (only the btleplug backend needs it)",
                reason.clone(),
            ));
            false
        }
    };
    out.push(backend_check(
        f,
        adapter_present && kernel_ok,
        net_admin,
        bluez_ok,
    ));
    out
}

fn backend_check(f: &BluetoothFacts, hci_ok: bool, net_admin: bool, bluez_ok: bool) -> Check {
    const NAME: &str = "BLE backend";
    const WHY_HCI: &str = "raw HCI user channel, duplicate filtering off: every advertisement, \
         so RSSI keeps updating";
    const DEDUP: &str = "BlueZ and the kernel de-duplicate advertisements, so RSSI updates stall \
         while a device's payload stays the same";
    let hci_usable = hci_ok && net_admin;
    let hci_fix = if !hci_ok {
        "give the gateway a Bluetooth adapter the kernel sees (see the checks above)".to_string()
    } else {
        SETCAP_ADMIN.to_string()
    };
    let dev = f.device;
    let release = format!(
        "hci{dev} must be down and released by BlueZ when dwell-edge starts: \
         `btmgmt -i hci{dev} power off` (or `hciconfig hci{dev} down`)"
    );
    match f.configured {
        Some("hci") if hci_usable => Check {
            name: NAME.into(),
            status: Status::Ok,
            detail: format!("hci (configured): {WHY_HCI}; {release}"),
            fix: None,
        },
        Some("hci") if bluez_ok => Check::fail(
            NAME,
            "hci is configured but the HCI user channel is not usable here; BlueZ is",
            format!("{hci_fix}; or switch to kind = \"btleplug\" (accepting that {DEDUP})"),
        ),
        Some("hci") => Check::fail(
            NAME,
            "hci is configured but the HCI user channel is not usable here",
            hci_fix,
        ),
        Some(_) if bluez_ok && hci_usable => Check::warn(
            NAME,
            format!("btleplug (configured) works, but {DEDUP}"),
            format!("switch to kind = \"hci\" ({WHY_HCI})"),
        ),
        Some(_) if bluez_ok => Check::warn(
            NAME,
            format!(
                "btleplug (configured): the HCI user channel is not usable here, so BlueZ is the \
                 way; but {DEDUP}"
            ),
            format!("for presence-grade RSSI: {hci_fix}, then kind = \"hci\""),
        ),
        Some(_) => Check::fail(
            NAME,
            "btleplug is configured but BlueZ is not usable",
            match &f.bluez {
                Bluez::NotBuilt => bl::reason::NOT_BUILT.to_string(),
                Bluez::Unreachable(r) => r.clone(),
                Bluez::Adapters(_) => bl::reason::NO_ADAPTER.to_string(),
            },
        ),
        None if hci_usable => Check::ok(
            NAME,
            format!("no live BLE source configured; kind = \"hci\" would work here ({WHY_HCI})"),
        ),
        None if bluez_ok => Check::warn(
            NAME,
            format!(
                "no live BLE source configured; only kind = \"btleplug\" would work here, and {DEDUP}"
            ),
            format!("for presence-grade RSSI: {hci_fix}"),
        ),
        None => Check::warn(
            NAME,
            "no live BLE source configured, and none would work on this host",
            format!("{hci_fix}; then add a source with kind = \"hci\""),
        ),
    }
}

/// The Wi-Fi checks for `doctor`, for one monitor interface: it exists, is in monitor mode with
/// radiotap and up, and the process may capture on it.
pub fn wifi(interface: &str) -> Vec<Check> {
    let name = format!("wifi {interface}");
    let mut out = Vec::new();
    match wifi_monitor::check_interface(interface) {
        Ok(info) => out.push(Check::ok(
            name.clone(),
            format!(
                "monitor mode with radiotap (type {}), up, ifindex {}",
                info.link_type, info.ifindex
            ),
        )),
        Err(reason) => out.push(Check::fail(name.clone(), "not usable for capture", reason)),
    }
    match capabilities() {
        Some(c) if c.net_raw => {
            out.push(Check::ok("CAP_NET_RAW", "held (needed to capture Wi-Fi)"))
        }
        Some(_) => out.push(Check::fail(
            "CAP_NET_RAW",
            "not held: the monitor interface cannot be captured",
            SETCAP_RAW,
        )),
        None => out.push(Check::warn(
            "CAP_NET_RAW",
            "cannot read /proc/self/status",
            "run on Linux with /proc mounted",
        )),
    }
    out
}

/// All radio checks for a configuration: Bluetooth always (with the configured backend, if any),
/// and Wi-Fi for each `kind = "wifi"` source.
pub fn radios(sources: &[SourceConfig]) -> Vec<Check> {
    let mut out = bluetooth(sources);
    for s in sources {
        if let SourceConfig::Wifi { interface, .. } = s {
            out.extend(wifi(interface));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> BluetoothFacts {
        BluetoothFacts {
            device: 0,
            adapters: Some(vec!["hci0".into()]),
            rfkill: vec![],
            af_bluetooth: Ok(()),
            caps: Some(Capabilities {
                net_admin: true,
                net_raw: true,
            }),
            system_bus: true,
            bluez: Bluez::Adapters(vec!["hci0".into()]),
            configured: Some("hci"),
        }
    }

    fn backend(f: &BluetoothFacts) -> Check {
        bluetooth_checks(f).pop().unwrap()
    }

    #[test]
    fn capabilities_come_from_cap_eff() {
        let c = parse_capabilities("Name:\tx\nCapPrm:\t0\nCapEff:\t0000000000001000\n").unwrap();
        assert_eq!(
            c,
            Capabilities {
                net_admin: true,
                net_raw: false
            }
        );
        assert_eq!(parse_capabilities("CapEff:\tzz"), None);
    }

    #[test]
    fn hci_is_chosen_where_it_works() {
        let c = backend(&facts());
        assert_eq!(c.status, Status::Ok, "{c}");
        assert!(c.detail.contains("duplicate filtering off"));
    }

    #[test]
    fn btleplug_works_but_is_warned_about_deduplication() {
        let f = BluetoothFacts {
            configured: Some("btleplug"),
            caps: Some(Capabilities {
                net_admin: false,
                net_raw: false,
            }),
            ..facts()
        };
        let c = backend(&f);
        assert_eq!(c.status, Status::Warn, "{c}");
        assert!(c.detail.contains("de-duplicate") && c.fix.unwrap().contains("setcap"));
    }

    #[test]
    fn nothing_usable_fails_with_fixes() {
        let f = BluetoothFacts {
            adapters: None,
            af_bluetooth: Err("this kernel has no Bluetooth support (AF_BLUETOOTH)".into()),
            system_bus: false,
            bluez: Bluez::Unreachable(bl::reason::NO_SYSTEM_BUS.into()),
            rfkill: vec![("hci0".into(), false)],
            ..facts()
        };
        let checks = bluetooth_checks(&f);
        assert!(checks.iter().any(|c| c.status == Status::Fail));
        for c in &checks {
            if c.status != Status::Ok {
                assert!(c.fix.as_ref().is_some_and(|f| !f.is_empty()), "{c}");
            }
        }
        assert!(
            checks
                .iter()
                .any(|c| c.to_string().contains("rfkill unblock"))
        );
    }
}
