//! `dwell-edge doctor`: checks what a gateway needs and says plainly what to fix.
//!
//! Store IT runs it after editing the config and whenever something looks wrong. Each check is
//! one line — `ok`, `warn` or `FAIL`, what was found, and for anything not ok, what to do. The
//! radio checks (Bluetooth stack, capture permissions, which backend and why) live with the
//! sources in [`crate::source::probe`]; this module adds the config, the broker (reachability and
//! credentials), the outbox's disk, the clock and the metrics port.

use crate::config::Config;
use crate::outbox::{OutboxConfig, OutboxError, SledOutbox};
use crate::source::probe::{self, Check, Status};
use crate::uplink::UplinkConfig;
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet};
use std::path::Path;
use std::time::Duration;

/// How long the broker check waits for a ConnAck.
const BROKER_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs every check for the config at `path`.
pub async fn run(path: &Path) -> Vec<Check> {
    let origin = path.display().to_string();
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            return vec![Check::fail(
                "config",
                e.to_string(),
                "fix the key named above, then run doctor again",
            )];
        }
    };
    let layout = config.store_layout();
    let mut checks = vec![Check::ok(
        "config",
        format!(
            "{origin}: store {}, gateway {}, {} receivers, {} zones, {} sources",
            layout.store,
            config.gateway.id,
            layout.receivers.len(),
            layout.zones.len(),
            config.sources.len()
        ),
    )];
    if config.sources.is_empty() {
        checks.push(Check::warn(
            "sources",
            "no [[sources]]: the gateway will only take zone-node reports",
            "add a source, e.g. [[sources]] kind = \"hci\"",
        ));
    }
    // Without a live radio source configured, a missing radio is worth knowing, not a failure.
    let uses_radio = config.sources.iter().any(|s| {
        matches!(
            s,
            crate::config::SourceConfig::Hci { .. }
                | crate::config::SourceConfig::Btleplug { .. }
                | crate::config::SourceConfig::Wifi { .. }
        )
    });
    checks.extend(probe::radios(&config.sources).into_iter().map(|mut c| {
        if !uses_radio && c.status == Status::Fail {
            c.status = Status::Warn;
            c.detail.push_str(" (no radio source is configured)");
        }
        c
    }));
    checks.push(match config.uplink(&origin) {
        Ok(u) => broker(&u).await,
        Err(e) => Check::fail("broker", e.to_string(), "fix [broker] in the config"),
    });
    checks.extend(outbox(&config.outbox));
    checks.push(clock());
    if !config.metrics.listen.is_empty() {
        checks.push(metrics_port(&config.metrics.listen));
    }
    checks
}

/// Connects once with the gateway's own settings and reads the ConnAck.
pub async fn broker(u: &UplinkConfig) -> Check {
    let name = "broker";
    let mut options = MqttOptions::new(format!("{}-doctor", u.client_id()), &u.host, u.port);
    options.set_clean_session(true);
    if let Some(user) = &u.username {
        options.set_credentials(user, u.password.clone().unwrap_or_default());
    }
    if let Some(tls) = &u.tls {
        match crate::uplink::mqtt::tls_config(tls) {
            Ok(t) => {
                options.set_transport(rumqttc::Transport::tls_with_config(t));
            }
            Err(e) => return Check::fail(name, e.to_string(), "fix broker.ca_file"),
        }
    }
    let (client, mut events) = AsyncClient::new(options, 4);
    let target = format!("{}:{}", u.host, u.port);
    let result = tokio::time::timeout(BROKER_TIMEOUT, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    let _ = client.disconnect().await;
    match result {
        Ok(Ok(())) => Check::ok(
            name,
            format!(
                "connected to {target}{}",
                if u.tls.is_some() { " over TLS" } else { "" }
            ),
        ),
        Ok(Err(ConnectionError::ConnectionRefused(code))) => {
            let fix = match code {
                ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized => {
                    "check broker.username and broker.password (or password_file) against the broker's password file"
                }
                _ => "check the broker's log for why it refused the connection",
            };
            Check::fail(
                name,
                format!("{target} refused the connection: {code:?}"),
                fix,
            )
        }
        Ok(Err(e)) => Check::fail(
            name,
            format!("{target} unreachable: {e}"),
            "check broker.url, that the broker runs (systemctl status mosquitto) and that the firewall lets the gateway reach it",
        ),
        Err(_) => Check::fail(
            name,
            format!(
                "no answer from {target} within {} s",
                BROKER_TIMEOUT.as_secs()
            ),
            "check broker.url and the network path; a TLS port spoken to in plain MQTT also hangs",
        ),
    }
}

/// The outbox directory: writable, enough free space, not locked by someone else.
pub fn outbox(cfg: &OutboxConfig) -> Vec<Check> {
    let mut out = Vec::new();
    let dir = &cfg.path;
    // The directory may not exist yet (the gateway creates it): check its nearest existing parent.
    let existing = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    match rustix::fs::statvfs(existing) {
        Ok(st) => {
            let free = st.f_bavail.saturating_mul(st.f_frsize);
            // sled needs about twice the logical bytes the cap counts (measured: 245 MiB on disk
            // for 120 MiB of events).
            let want = cfg.max_bytes.saturating_mul(2);
            let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
            out.push(if free >= want {
                Check::ok("disk", format!("{:.1} GiB free at {}", gib(free), existing.display()))
            } else {
                Check::warn(
                    "disk",
                    format!(
                        "{:.1} GiB free at {}, the outbox may use up to {:.1} GiB (2 × outbox.max_bytes)",
                        gib(free),
                        existing.display(),
                        gib(want)
                    ),
                    "free space or lower outbox.max_bytes (an outage longer than the cap allows drops the oldest events)",
                )
            });
        }
        Err(e) => out.push(Check::warn(
            "disk",
            format!("cannot read free space at {}: {e}", existing.display()),
            "check the path",
        )),
    }
    out.push(match SledOutbox::open(cfg) {
        Ok(o) => {
            let s = crate::outbox::Outbox::stats(&o);
            Check::ok(
                "outbox",
                format!("{}: {} events waiting, {} dropped by the cap ever", dir.display(), s.records, s.dropped),
            )
        }
        Err(OutboxError::Locked { .. }) => {
            Check::ok("outbox", format!("{} is open in a running gateway", dir.display()))
        }
        Err(e) => Check::fail(
            "outbox",
            format!("{}: {e}", dir.display()),
            "make outbox.path a directory the dwell-edge user can write (the package uses /var/lib/dwell-edge)",
        ),
    });
    out
}

/// The clock must be plausible (events carry UTC milliseconds) and preferably synchronised.
pub fn clock() -> Check {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // 2025-01-01T00:00:00Z: a gateway whose clock reads earlier has lost its time.
    if now < 1_735_689_600 {
        return Check::fail(
            "clock",
            "the system clock is before 2025: events would be stamped in the past",
            "enable time sync (timedatectl set-ntp true) or install chrony",
        );
    }
    let synced = Path::new("/run/systemd/timesync/synchronized").exists()
        || Path::new("/run/chrony/chronyd.pid").exists()
        || Path::new("/var/run/chronyd.pid").exists();
    if synced {
        Check::ok("clock", "plausible and synchronised")
    } else {
        Check::warn(
            "clock",
            "plausible, but no time synchronisation was found (systemd-timesyncd, chrony)",
            "timedatectl set-ntp true, or apt-get install chrony: dwell and coupons are timed to the second",
        )
    }
}

/// Whether `/metrics` can listen where configured.
pub fn metrics_port(listen: &str) -> Check {
    match std::net::TcpListener::bind(listen) {
        Ok(_) => Check::ok("metrics", format!("{listen} is free for /metrics")),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Check::warn(
            "metrics",
            format!("{listen} is in use (a running gateway, or another program)"),
            "if the gateway is not running, pick another metrics.listen",
        ),
        Err(e) => Check::fail(
            "metrics",
            format!("cannot listen on {listen}: {e}"),
            "fix metrics.listen, or \"\" to turn it off",
        ),
    }
}

/// Prints checks, one per line (and the fix under each), and whether any failed.
pub fn print(checks: &[Check]) -> bool {
    for c in checks {
        println!("{c}");
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    println!(
        "\n{} checks: {} ok, {warned} warnings, {failed} failed",
        checks.len(),
        checks.len() - failed - warned
    );
    failed > 0
}
