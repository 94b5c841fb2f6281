//! `bench tokens`: the time to verify one queue token in each form the
//! gateway reads, on this machine's CPU (with whatever SHA or vector
//! extensions it has), next to the instruction counts of `bench gateway
//! --instructions`, which run SHA-256's portable code.

use enrollment::{RoundId, StudentId};
use std::time::Instant;
use waitroom::token::{Keyring, QueueFormat, DEV_KEY_SPEC};
use waitroom::QueueClaims;

#[derive(clap::Args)]
pub struct Args {
    /// Verifications per form and round.
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Rounds; the forms alternate within each.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
}

const FORMS: [(&str, QueueFormat); 3] = [
    ("compact, keyed BLAKE3", QueueFormat::Fast),
    ("compact, HMAC-SHA256", QueueFormat::Hmac),
    ("JSON, HMAC-SHA256", QueueFormat::Json),
];

pub fn run(args: Args) -> anyhow::Result<()> {
    let ring = Keyring::from_spec(DEV_KEY_SPEC)?;
    // A token as a waiting student holds one: shuffled order key, a
    // seven-digit mark, three hours to live.
    let claims = QueueClaims {
        round: RoundId(3),
        student: StudentId(2_027_000_123),
        seq: 48_213,
        order_key: Some(0x9f3a_5b7c_1d2e_4f60),
        mark_at_join: 1_240_000,
        iat: 1_764_748_800_000,
        exp: 1_764_759_600_000,
    };
    let tokens: Vec<String> = FORMS
        .iter()
        .map(|&(_, format)| ring.clone().with_queue_format(format).sign_queue(&claims))
        .collect();
    let count = args.count.max(1);
    let mut ns = vec![Vec::new(); FORMS.len()];
    for _ in 0..args.rounds.max(1) {
        for (i, token) in tokens.iter().enumerate() {
            let started = Instant::now();
            for n in 0..count {
                let at = claims.iat + (n & 0xffff);
                let verified = ring.verify_queue(std::hint::black_box(token), at);
                anyhow::ensure!(verified.is_ok(), "a token of {} did not verify", FORMS[i].0);
            }
            ns[i].push(started.elapsed().as_nanos() as f64 / count as f64);
        }
    }
    println!("| queue token | bytes | ns per verification (each round) |");
    println!("| --- | --- | --- |");
    for (i, (name, _)) in FORMS.iter().enumerate() {
        let rounds: Vec<String> = ns[i].iter().map(|v| format!("{v:.0}")).collect();
        println!("| {name} | {} | {} |", tokens[i].len(), rounds.join(" / "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every form signs a token the keyring verifies (the run stops at
    /// the first that does not).
    #[test]
    fn every_form_verifies() {
        run(Args {
            count: 3,
            rounds: 1,
        })
        .unwrap();
    }
}
