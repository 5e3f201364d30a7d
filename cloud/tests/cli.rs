//! The `dwell-cloud` binary as users run it.

use std::process::Command;

fn eid(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dwell-cloud"))
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .arg("eid")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn eid_prints_the_spec_values() {
    // RadiusNetworks/ephemeral_calc reference values for key 0102…16, K = 10.
    for (t, want) in [("0", "a9b76a71c5f89290\n"), ("2000", "4144413e45fefa58\n")] {
        let out = eid(&[
            "--identity-key",
            "0102030405060708090a111213141516",
            "--exponent",
            "10",
            "--time",
            t,
        ]);
        assert!(out.status.success());
        assert_eq!(String::from_utf8(out.stdout).unwrap(), want);
    }
}

#[test]
fn bad_key_and_exponent_say_what_to_fix() {
    let out = eid(&["--identity-key", "0102", "--exponent", "10", "--time", "0"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("32 hex digits")
    );
    let out = eid(&[
        "--identity-key",
        &"00".repeat(16),
        "--exponent",
        "16",
        "--time",
        "0",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("0..=15"));
}
