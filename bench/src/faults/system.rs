//! Running the machine's own tools (mysqladmin, rabbitmqctl, pgrep,
//! start-stop-daemon) with a time limit, and waiting for the test suites
//! that share MariaDB and RabbitMQ.

use anyhow::Context;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;
use tokio::time::Instant;

/// Longest a dependency may take to stop or to start again.
pub(super) const DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(120);
/// Processes that mean a test suite is using the shared MariaDB/RabbitMQ.
const TEST_SUITE: &str = "scripts/test|nextest";

/// Runs a command to its end with a time limit; fails on a non-zero exit.
pub(super) async fn sh(program: &str, args: &[&str], timeout: Duration) -> anyhow::Result<()> {
    let run = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(timeout, run)
        .await
        .with_context(|| format!("{program} did not finish within {timeout:?}"))?
        .with_context(|| format!("running {program}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// Starts a daemon whose launcher forks and returns; its output goes
/// nowhere so that nothing waits on a pipe the daemon keeps open.
pub(super) async fn launch(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let status = tokio::time::timeout(DEPENDENCY_TIMEOUT, status)
        .await
        .with_context(|| format!("{program} did not return"))?
        .with_context(|| format!("running {program}"))?;
    anyhow::ensure!(status.success(), "{program} {} failed", args.join(" "));
    Ok(())
}

pub(super) async fn succeeds(program: &str, args: &[&str]) -> bool {
    sh(program, args, Duration::from_secs(15)).await.is_ok()
}

/// Polls `check` until it holds or `limit` passed.
pub(super) async fn wait_until<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

pub(super) async fn tests_running() -> bool {
    succeeds("pgrep", &["-f", TEST_SUITE]).await
}

/// Waits (bounded) until no test suite is using the shared dependencies.
pub(super) async fn wait_for_tests(limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let mut said = false;
    while tests_running().await {
        anyhow::ensure!(
            Instant::now() < deadline,
            "a test suite has been running for {limit:?}; not restarting the MariaDB/RabbitMQ it uses"
        );
        if !said {
            println!("chaos: a test suite is using MariaDB/RabbitMQ; waiting for it to finish (at most {limit:?})");
            said = true;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    Ok(())
}
