//! Starting the `sluice-gateway` binary with a configuration mistake: it
//! must end at once with one line naming the setting to change, never a
//! panic or a backtrace, and with the exit status of a usage error.

use std::process::Command;

/// Runs the binary with `env` (and a backtrace requested, as a developer's
/// shell often has it) and returns (status, stderr).
fn start(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice-gateway"));
    cmd.env("RUST_BACKTRACE", "1")
        .env("RUST_LOG", "error")
        .env("SLUICE_LEADER", "false");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run sluice-gateway");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_one_clear_line(status: Option<i32>, stderr: &str, names: &str, says: &str) {
    assert_eq!(status, Some(2), "a configuration error exits 2: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line, no backtrace: {stderr}");
    assert!(lines[0].starts_with("sluice-gateway: "), "{stderr}");
    assert!(lines[0].contains(names), "names {names}: {stderr}");
    assert!(lines[0].contains(says), "says {says}: {stderr}");
}

#[test]
fn an_operations_port_in_use_is_one_line_naming_the_setting() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (status, stderr) = start(&[
        ("SLUICE_LISTEN", "127.0.0.1:0"),
        ("SLUICE_METRICS_ADDR", &addr),
    ]);
    assert_one_clear_line(status, &stderr, "SLUICE_METRICS_ADDR", "free address");
}

#[test]
fn a_public_port_in_use_is_one_line_naming_the_setting() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (status, stderr) = start(&[("SLUICE_LISTEN", &addr)]);
    assert_one_clear_line(status, &stderr, "SLUICE_LISTEN", "free address");
}

#[test]
fn bad_urls_and_a_missing_key_file_say_what_to_change() {
    let listen = ("SLUICE_LISTEN", "127.0.0.1:0");
    let (status, stderr) = start(&[listen, ("DATABASE_URL", "postgres://db/sluice")]);
    assert_one_clear_line(status, &stderr, "DATABASE_URL", "mysql://");
    let (status, stderr) = start(&[listen, ("AMQP_URL", "htp://broker")]);
    assert_one_clear_line(status, &stderr, "AMQP_URL", "amqp://");
    let (status, stderr) = start(&[listen, ("SLUICE_SIGNING_KEYS_FILE", "/nonexistent/keys")]);
    assert_one_clear_line(status, &stderr, "SLUICE_SIGNING_KEYS_FILE", "key file");
}
