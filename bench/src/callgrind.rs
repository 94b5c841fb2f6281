//! Instructions a process executes, counted by callgrind: a measure of the
//! code's cost that the machine's speed and load cannot move.
//!
//! A process runs under `valgrind --tool=callgrind` with instrumentation
//! off from the start; [`Profiled::count`] switches it on around a piece of
//! client work (through `callgrind_control`, which reaches the process even
//! while it is blocked in a system call), switches it off, dumps, and reads
//! the instructions executed (`Ir`) from the dump. Only user-space
//! instructions count: system calls are one instruction each, whatever the
//! kernel does for them.
//!
//! `bench gateway --instructions` uses it (`gateway/instructions.rs`).

use anyhow::{bail, Context};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::{Child, Command};

const VALGRIND: &str = "valgrind";
const CONTROL: &str = "callgrind_control";

/// Fails with a clear message unless `valgrind` and `callgrind_control`
/// both run.
pub async fn check_tools() -> anyhow::Result<()> {
    for tool in [VALGRIND, CONTROL] {
        let ran = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        match ran {
            Ok(status) if status.success() => {}
            Ok(status) => bail!("`{tool} --version` failed ({status}); --instructions needs it"),
            Err(e) => {
                bail!("`{tool}` not found ({e}); --instructions needs valgrind with callgrind")
            }
        }
    }
    Ok(())
}

/// A process running under callgrind with instrumentation off.
pub struct Profiled {
    child: Child,
    pid: u32,
    /// Dump files are `<out>.<pid>.<n>`, n counting dumps from 1.
    out: PathBuf,
    dumps: u32,
}

impl Profiled {
    /// Starts `program args` under callgrind, writing its dumps into `dir`
    /// under `name`.
    pub fn spawn(
        dir: &Path,
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Profiled> {
        let out = dir.join(name);
        // `--instr-atstart=no` rather than `--collect-atstart=no`: with
        // collection off, `callgrind_control -i on` switches instrumentation
        // on but nothing is collected and every dump reads 0.
        let child = Command::new(VALGRIND)
            .arg("--tool=callgrind")
            .arg("--instr-atstart=no")
            .arg(format!("--callgrind-out-file={}.%p", out.display()))
            .arg(program)
            .args(args)
            .envs(env.iter().copied())
            // valgrind's banner and summary would interleave with the
            // bench's progress lines.
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name} under callgrind"))?;
        let pid = child.id().context("pid of the process under callgrind")?;
        Ok(Profiled {
            child,
            pid,
            out,
            dumps: 0,
        })
    }

    /// Runs `work` with instrumentation on; returns its result and the
    /// instructions the process executed meanwhile.
    pub async fn count<T>(
        &mut self,
        work: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<(T, u64)> {
        self.control("-i", Some("on")).await?;
        let done = work.await;
        self.control("-i", Some("off")).await?;
        // A dump also zeroes the counters: the next window starts clean.
        self.control("-d", None).await?;
        self.dumps += 1;
        let path = PathBuf::from(format!(
            "{}.{}.{}",
            self.out.display(),
            self.pid,
            self.dumps
        ));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the callgrind dump {}", path.display()))?;
        Ok((done?, total_ir(&text)?))
    }

    /// Stops the process (it has nothing to keep).
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    async fn control(&self, flag: &str, value: Option<&str>) -> anyhow::Result<()> {
        let mut command = Command::new(CONTROL);
        command.arg(flag);
        if let Some(value) = value {
            command.arg(value);
        }
        let output = command
            .arg(self.pid.to_string())
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("running {CONTROL}"))?;
        let said = String::from_utf8_lossy(&output.stdout);
        // It exits 0 even when it found no such process; "OK." is the
        // process's own answer.
        if !output.status.success() || !said.contains("OK.") {
            bail!(
                "`{CONTROL} {flag} {} {}` failed: {}{}",
                value.unwrap_or(""),
                self.pid,
                said.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }
}

/// The instructions executed (`Ir`) recorded in a callgrind output file:
/// its `totals:` line (`summary:` when there is none), at the position of
/// `Ir` in its `events:` line.
pub fn total_ir(text: &str) -> anyhow::Result<u64> {
    let field = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .map(str::split_whitespace)
    };
    let column = field("events:")
        .context("no `events:` line in the callgrind output")?
        .position(|event| event == "Ir")
        .context("the callgrind output does not count Ir")?;
    let values = field("totals:")
        .or_else(|| field("summary:"))
        .context("no `totals:` or `summary:` line in the callgrind output")?;
    let value = values
        .into_iter()
        .nth(column)
        // A cost line may stop early: missing trailing costs are zero.
        .unwrap_or("0");
    value
        .parse()
        .with_context(|| format!("Ir total {value:?} is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "\
# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  bench gateway --serve gateway --listen 127.0.0.1:40000
part: 1

desc: I1 cache:
desc: Timerange: Basic block 0 - 1234
desc: Trigger: Client Request: dump

positions: line
events: Ir
summary: 0


totals: 73425119
";

    #[test]
    fn reads_the_totals_line() {
        assert_eq!(total_ir(DUMP).unwrap(), 73_425_119);
    }

    #[test]
    fn falls_back_to_the_summary_line() {
        let text = "events: Ir\nsummary: 1234\n";
        assert_eq!(total_ir(text).unwrap(), 1234);
    }

    #[test]
    fn finds_ir_among_several_events() {
        let text = "events: Dr Ir Dw\ntotals: 5 77 9\n";
        assert_eq!(total_ir(text).unwrap(), 77);
    }

    #[test]
    fn a_missing_trailing_cost_is_zero() {
        let text = "events: Dr Ir\ntotals: 5\n";
        assert_eq!(total_ir(text).unwrap(), 0);
    }

    #[test]
    fn refuses_output_without_totals_or_ir() {
        assert!(total_ir("events: Ir\n").is_err());
        assert!(total_ir("events: Dr\ntotals: 3\n").is_err());
        assert!(total_ir("totals: 3\n").is_err());
        assert!(total_ir("events: Ir\ntotals: lots\n").is_err());
    }
}
