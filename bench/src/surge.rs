//! `bench surge`: a registration-day surge against a deployment
//! (`--base-url`) or a cluster the bench starts itself (`--local`), with
//! no plug-in: see [`crate::engine`].

use crate::engine::Engine;
use crate::report::{self, Output};

pub use crate::engine::Args;

pub async fn run(args: Args) -> anyhow::Result<()> {
    let out = Output {
        json: args.report.clone(),
        charts: args.charts.clone(),
    };
    let publish = Box::new(|r: &report::Report, ledger: Option<&_>| {
        report::print(r);
        report::save(r, ledger, &out)
    });
    let report = Engine::new(args).run(publish).await?;
    report::verdict(&report)
}
