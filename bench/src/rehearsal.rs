//! `bench rehearse`: `bench surge` (same flags) against a deployment's
//! rehearsal round, bounded here whatever the flags say, registered with
//! the gateway first and reported to it afterwards for the ops panel.
//!
//! The bounds are the gateway's own ([`::gateway::rehearsal`]): at most
//! `MAX_STUDENTS` students, arrivals over at most `MAX_DURATION_S`, and the
//! whole surge cut at that deadline. The gateway refuses to register a run
//! against a round not marked as a rehearsal, and then nothing is sent.

use crate::engine::{Args, Engine};
use crate::report::{self, Output, Report};
use ::gateway::rehearsal::{
    RunReport, RunRequest, RunStarted, Summary, MAX_DURATION_S, MAX_REPORT_BYTES, MAX_STUDENTS,
};
use anyhow::{bail, Context};
use std::time::Duration;

/// Checks and tightens `args` for a rehearsal: a deployment (`--base-url`
/// and `--round`), at most [`MAX_STUDENTS`] students, arrivals within
/// [`MAX_DURATION_S`], and the surge's deadline cut to it. Returns what
/// the gateway is asked to register.
pub fn bounded(args: &mut Args) -> anyhow::Result<RunRequest> {
    if args.local || args.base_url.is_empty() {
        bail!("a rehearsal targets a deployment: give --base-url (and --round), not --local");
    }
    let Some(round) = args.round else {
        bail!("a rehearsal needs --round: the deployment's rehearsal round");
    };
    let students = u32::try_from(args.students).unwrap_or(u32::MAX);
    if students == 0 || students > MAX_STUDENTS {
        bail!(
            "a rehearsal runs at most {MAX_STUDENTS} students (asked for {})",
            args.students
        );
    }
    let limit = Duration::from_secs(u64::from(MAX_DURATION_S));
    if args.over > limit {
        bail!(
            "a rehearsal's arrivals last at most {MAX_DURATION_S} s (--over {:?})",
            args.over
        );
    }
    args.deadline = args.deadline.min(limit);
    let duration_s = u32::try_from(args.deadline.as_secs().max(1)).unwrap_or(MAX_DURATION_S);
    Ok(RunRequest {
        round,
        students,
        duration_s,
    })
}

/// The key results the ops panel lists.
pub fn summary(r: &Report) -> Summary {
    Summary {
        joined: r.joined,
        admitted: r.admitted,
        accepted_commands: r.accepted_commands,
        http_5xx: r.http_5xx,
        join_p99_ms: r.join_p99_ms,
        decision_p99_ms: r.decision_p99_ms,
        duration_s: r.duration_s,
    }
}

/// The report as stored by the gateway: without its timeline and, if still
/// too large, without its largest fields, down to [`MAX_REPORT_BYTES`].
pub fn stored(r: &Report) -> serde_json::Value {
    trimmed(serde_json::to_value(r).unwrap_or_default())
}

fn trimmed(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(map) = v.as_object_mut() {
        map.remove("timeline");
        while serde_json::to_vec(map).map_or(0, |b| b.len()) > MAX_REPORT_BYTES {
            let largest = map
                .iter()
                .max_by_key(|(_, x)| x.to_string().len())
                .map(|(k, _)| k.clone());
            match largest {
                Some(k) => {
                    map.remove(&k);
                }
                None => break,
            }
        }
    }
    v
}

pub async fn run(mut args: Args) -> anyhow::Result<()> {
    let request = bounded(&mut args)?;
    let admin = args
        .admin
        .split_once(':')
        .map(|(u, p)| (u.to_string(), p.to_string()))
        .context("--admin must be user:password")?;
    let base = args.base_url[0].trim_end_matches('/').to_string();
    let http = reqwest::Client::new();

    // The gateway says whether this round may be rehearsed against.
    let r = http
        .post(format!("{base}/api/admin/rehearsals"))
        .basic_auth(&admin.0, Some(&admin.1))
        .json(&request)
        .send()
        .await
        .context("registering the rehearsal run")?;
    let status = r.status();
    if !status.is_success() {
        let body = r.text().await.unwrap_or_default();
        bail!("the gateway refused the rehearsal run ({status}): {body}");
    }
    let started: RunStarted = r.json().await.context("the registered run")?;
    println!(
        "rehearsal run {} registered: round {}, {} students, {} s at most",
        started.id, request.round, request.students, request.duration_s
    );

    let out = Output {
        json: args.report.clone(),
        charts: args.charts.clone(),
    };
    let publish = Box::new(|r: &Report, ledger: Option<&_>| {
        report::print(r);
        report::save(r, ledger, &out)
    });
    let report = Engine::new(args).run(publish).await?;

    let body = RunReport {
        summary: summary(&report),
        report: stored(&report),
    };
    let r = http
        .post(format!("{base}/api/admin/rehearsals/{}/report", started.id))
        .basic_auth(&admin.0, Some(&admin.1))
        .json(&body)
        .send()
        .await
        .context("sending the rehearsal report")?;
    if !r.status().is_success() {
        let status = r.status();
        bail!(
            "the gateway did not store the report ({status}): {}",
            r.text().await.unwrap_or_default()
        );
    }
    println!("rehearsal run {} reported", started.id);
    report::verdict(&report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(flags: &[&str]) -> Args {
        let mut all = vec!["bench"];
        all.extend_from_slice(flags);
        Cli::parse_from(all).args
    }

    #[test]
    fn a_rehearsal_is_bounded_by_the_bench_itself() {
        let mut a = args(&[
            "--base-url",
            "http://gw:8080",
            "--round",
            "7",
            "--students",
            "300",
            "--over",
            "30s",
        ]);
        let req = bounded(&mut a).unwrap();
        assert_eq!((req.round, req.students), (7, 300));
        // The default 15 min deadline is cut to the rehearsal's limit.
        assert_eq!(a.deadline, Duration::from_secs(u64::from(MAX_DURATION_S)));
        assert_eq!(req.duration_s, MAX_DURATION_S);
        assert_eq!(req.out_of_bounds(), None, "within the gateway's bounds too");

        let mut short = args(&[
            "--base-url",
            "http://gw",
            "--round",
            "7",
            "--students",
            "10",
            "--deadline",
            "2m",
        ]);
        assert_eq!(bounded(&mut short).unwrap().duration_s, 120);

        let too_many = (MAX_STUDENTS + 1).to_string();
        for flags in [
            vec![
                "--base-url",
                "http://gw",
                "--round",
                "7",
                "--students",
                too_many.as_str(),
            ],
            vec!["--base-url", "http://gw", "--round", "7", "--students", "0"],
            vec!["--base-url", "http://gw", "--round", "7", "--over", "11m"],
            vec!["--base-url", "http://gw", "--students", "10"],
            vec!["--local", "--round", "7", "--students", "10"],
        ] {
            assert!(bounded(&mut args(&flags)).is_err(), "{flags:?}");
        }
    }

    #[test]
    fn the_stored_report_fits_the_gateway_limit() {
        let errors: std::collections::BTreeMap<String, u64> =
            (0..3_000).map(|i| (format!("error-{i}"), i)).collect();
        let v = trimmed(serde_json::json!({
            "admitted": 3,
            "timeline": vec![1; 10_000],
            "errors": errors,
        }));
        assert!(v.to_string().len() <= MAX_REPORT_BYTES);
        assert_eq!(
            v,
            serde_json::json!({ "admitted": 3 }),
            "the small fields stay"
        );
    }
}
