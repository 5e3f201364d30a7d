//! Helpers shared by the broker tests: free ports, and a private Mosquitto started with the
//! project's config (`deploy/mosquitto/dwell.conf`) on a free port, never the standard one, plain
//! or with TLS and passwords. The cloud's tests include this file too (`cloud/tests/support`).
#![allow(dead_code)] // each test binary uses its own subset

use std::path::Path;
use std::time::Duration;
use tokio::net::TcpStream;

pub fn free_port() -> u16 {
    // rumqttd and mosquitto take a fixed port: ask the OS for a free one and release it.
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits up to 10 s until something listens on `port` (a broker, a scratch PostgreSQL).
pub async fn wait_for_port(port: u16) {
    for _ in 0..400 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("nothing listens on {port}");
}

pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

pub struct Mosquitto {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `deploy/mosquitto/dwell.conf` with this test's listener, persistence directory, logging and
/// anonymous access; every delivery setting stays as shipped.
pub fn mosquitto_conf(port: u16, dir: &Path) -> String {
    let shipped = include_str!("../../../deploy/mosquitto/dwell.conf");
    let replaced = [
        "listener",
        "persistence_location",
        "allow_anonymous",
        "password_file",
        "log_dest",
    ];
    let mut conf: String = shipped
        .lines()
        .filter(|l| !replaced.iter().any(|k| l.trim_start().starts_with(k)))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(conf.contains("max_queued_messages 0"));
    assert!(conf.contains("max_inflight_messages 100"));
    conf.push_str(&format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\npersistence_location {}/\nlog_dest stderr\n",
        dir.display()
    ));
    conf
}

pub fn start_mosquitto(port: u16) -> Option<Mosquitto> {
    if !Path::new(MOSQUITTO).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "mosquitto not installed (apt-get install mosquitto) and CI is set"
        );
        println!("SKIP: mosquitto not installed (apt-get install mosquitto)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("dwell.conf");
    std::fs::write(&conf, mosquitto_conf(port, dir.path())).unwrap();
    let child = std::process::Command::new(MOSQUITTO)
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start mosquitto");
    Some(Mosquitto { child, _dir: dir })
}

// ---------------------------------------------------------------------------------------------
// TLS and passwords: a throwaway PKI (openssl) and a Mosquitto with a TLS listener and a
// password file (mosquitto_passwd). Skip rule as for Mosquitto: `SKIP: …` and pass, unless `CI`.

/// When a program a test needs is missing: print `SKIP: …` and return, or panic if `CI` is set.
pub fn skip_or_panic(what: &str, package: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} not installed (apt-get install {package}) and CI is set"
    );
    println!("SKIP: {what} not installed (apt-get install {package})");
}

/// Whether `program` is on the PATH (or is a path that exists).
pub fn have_program(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Runs a command, panicking with its output if it fails.
fn run(command: &mut std::process::Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway PKI in a directory: a CA, a server certificate it signed for `localhost` and
/// `127.0.0.1` (both in the subjectAltName: rustls ignores the CN), and an unrelated second CA.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA that signed the server certificate (PEM).
    pub ca_file: std::path::PathBuf,
    pub server_cert: std::path::PathBuf,
    pub server_key: std::path::PathBuf,
    /// A CA that signed nothing here (PEM).
    pub other_ca_file: std::path::PathBuf,
}

const PKI_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// Makes the PKI with the `openssl` command line (P-256 keys, valid for two days).
pub fn make_test_pki(dir: &Path) -> TestPki {
    let cnf = dir.join("pki.cnf");
    std::fs::write(&cnf, PKI_CNF).unwrap();
    let openssl = |args: &[&str]| {
        run(std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args));
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for (name, cn) in [("ca", "Dwell test CA"), ("other-ca", "Unrelated test CA")] {
        let (key, pem, subj) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("/CN={cn}"),
        );
        let mut args = vec![
            "req",
            "-x509",
            "-new",
            "-config",
            "pki.cnf",
            "-extensions",
            "ca_ext",
        ];
        args.extend(ec);
        args.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
        openssl(&args);
    }
    let mut args = vec!["req", "-new", "-config", "pki.cnf"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(&args);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "2",
        "-days",
        "2",
        "-extfile",
        "pki.cnf",
        "-extensions",
        "server_ext",
        "-out",
        "server.pem",
    ]);
    TestPki {
        ca_file: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        other_ca_file: dir.join("other-ca.pem"),
    }
}

/// `deploy/mosquitto/dwell.conf` with this test's TLS listener (server certificate from `pki`,
/// no client certificates asked for), logins from `password_file` only, and this test's
/// persistence directory and logging; every delivery setting stays as shipped. `user root`: a
/// Mosquitto started as root otherwise switches to the `mosquitto` user before it reads the key,
/// and that user can't read this test's private directory (as any other user the line does
/// nothing: the broker runs as whoever runs the test).
pub fn mosquitto_tls_conf(port: u16, dir: &Path, pki: &TestPki, password_file: &Path) -> String {
    let shipped = include_str!("../../../deploy/mosquitto/dwell.conf");
    let replaced = [
        "listener",
        "persistence_location",
        "allow_anonymous",
        "password_file",
        "log_dest",
        "cafile",
        "certfile",
        "keyfile",
        "require_certificate",
    ];
    let mut conf: String = shipped
        .lines()
        .filter(|l| !replaced.iter().any(|k| l.trim_start().starts_with(k)))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(conf.contains("max_queued_messages 0"));
    assert!(conf.contains("max_inflight_messages 100"));
    conf.push_str(&format!(
        "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate false\n\
         allow_anonymous false\npassword_file {}\npersistence_location {}/\nlog_dest stderr\n\
         user root\n",
        pki.ca_file.display(),
        pki.server_cert.display(),
        pki.server_key.display(),
        password_file.display(),
        dir.display()
    ));
    conf
}

/// A private Mosquitto that speaks only TLS and wants a login, and the PKI it uses.
pub struct TlsMosquitto {
    pub port: u16,
    pub pki: TestPki,
    /// The one login the broker accepts.
    pub username: String,
    pub password: String,
    log: std::path::PathBuf,
    _broker: Mosquitto,
}

impl TlsMosquitto {
    /// What the broker logged so far (lossy: a log line may carry a client's bytes).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }
}

/// Starts a [`TlsMosquitto`] on a free port and waits until it listens, or `None` (after the
/// skip rule) when `openssl`, `mosquitto` or `mosquitto_passwd` is missing.
pub async fn start_mosquitto_tls(username: &str, password: &str) -> Option<TlsMosquitto> {
    for (program, package) in [
        ("openssl", "openssl"),
        (MOSQUITTO, "mosquitto"),
        ("mosquitto_passwd", "mosquitto"),
    ] {
        if !have_program(program) {
            skip_or_panic(program, package);
            return None;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = make_test_pki(dir.path());
    let password_file = dir.path().join("passwd");
    run(std::process::Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&password_file)
        .args([username, password]));
    let port = free_port();
    let conf = dir.path().join("dwell.conf");
    std::fs::write(
        &conf,
        mosquitto_tls_conf(port, dir.path(), &pki, &password_file),
    )
    .unwrap();
    let log = dir.path().join("mosquitto.log");
    let child = std::process::Command::new(MOSQUITTO)
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start mosquitto");
    let mut broker = Mosquitto { child, _dir: dir };
    let mut listening = false;
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            listening = true;
            break;
        }
        if let Ok(Some(status)) = broker.child.try_wait() {
            panic!(
                "mosquitto exited ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        listening,
        "mosquitto did not listen on {port}: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    Some(TlsMosquitto {
        port,
        pki,
        username: username.into(),
        password: password.into(),
        log,
        _broker: broker,
    })
}
