//! `sluice-dlq`: list or replay dead-lettered commands.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sluice-dlq",
    about = "See and replay Sluice's dead-lettered commands."
)]
struct Cli {
    /// RabbitMQ URL.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = service::connections::DEFAULT_AMQP_URL,
        hide_env_values = true
    )]
    amqp_url: String,
    /// Prefix of the exchanges and queues.
    #[arg(long, env = "SLUICE_QUEUE_PREFIX", default_value = "sluice")]
    queue_prefix: String,
    /// At most this many messages.
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    #[command(subcommand)]
    command: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Print each dead letter (as JSON lines) and leave it in the queue.
    List,
    /// Republish the dead letters that are commands; keep the rest.
    Replay,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    worker::telemetry::init_logging();
    let cli = Cli::parse();
    let topology = broker::Topology::new(&cli.queue_prefix);
    match cli.command {
        Action::List => {
            let letters = worker::deadletters::list(&cli.amqp_url, &topology, cli.limit).await?;
            for l in &letters {
                println!("{}", serde_json::to_string(l)?);
            }
            eprintln!(
                "{} dead letter(s) in {}",
                letters.len(),
                topology.dead_queue
            );
        }
        Action::Replay => {
            let r = worker::deadletters::replay(&cli.amqp_url, &topology, cli.limit).await?;
            eprintln!(
                "replayed {} command(s); kept {} message(s) that are not commands",
                r.replayed, r.kept
            );
        }
    }
    Ok(())
}
