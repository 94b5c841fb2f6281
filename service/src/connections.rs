//! Where the database and the broker are, with the secret parts wrapped.
//!
//! Both URLs may carry a password, so they are held as [`SecretString`]:
//! `Debug` (and so every `?config` in a log line) shows them redacted, and
//! reading one takes an explicit `expose_secret()`.

pub use secrecy::{ExposeSecret, SecretString};

/// The MySQL URL on a developer machine.
pub const DEFAULT_DATABASE_URL: &str = "mysql://root@127.0.0.1:3306/sluice";

/// The MySQL server (no database) on a developer machine, for tools that
/// create their own databases (the bench).
pub const DEFAULT_MYSQL_SERVER: &str = "mysql://root@127.0.0.1:3306";

/// The RabbitMQ URL on a developer machine.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The database and broker URLs of one process, read from flags or
/// `DATABASE_URL` and `AMQP_URL`. Flatten it into a binary's `clap`
/// configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct Connections {
    /// MySQL URL.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL,
          hide_env_values = true, value_parser = secret)]
    pub database_url: SecretString,

    /// RabbitMQ URL.
    #[arg(long, env = "AMQP_URL", default_value = DEFAULT_AMQP_URL,
          hide_env_values = true, value_parser = secret)]
    pub amqp_url: SecretString,
}

/// A `clap` value parser for any secret setting: wraps it as it is read, so
/// the plain value never sits in a printable field.
pub fn secret(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use secrecy::ExposeSecret;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        connections: Connections,
    }

    #[test]
    fn urls_are_read_and_never_printed() {
        let cli = Cli::parse_from([
            "test",
            "--database-url",
            "mysql://app:hunter2@db:3306/sluice",
            "--amqp-url",
            "amqp://app:rabbit-pw@mq:5672/%2f",
        ]);
        assert_eq!(
            cli.connections.database_url.expose_secret(),
            "mysql://app:hunter2@db:3306/sluice"
        );
        let shown = format!("{cli:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("rabbit-pw"),
            "{shown}"
        );
        assert!(shown.contains("REDACTED"), "{shown}");
    }

    #[test]
    fn the_defaults_are_the_developer_machine() {
        // Read from the definition, not by parsing: the environment the
        // tests run in may set either variable.
        let command = <Cli as clap::CommandFactory>::command();
        let default = |id: &str| {
            command
                .get_arguments()
                .find(|a| a.get_id() == id)
                .map(|a| a.get_default_values().to_vec())
        };
        assert_eq!(
            default("database_url"),
            Some(vec![DEFAULT_DATABASE_URL.into()])
        );
        assert_eq!(default("amqp_url"), Some(vec![DEFAULT_AMQP_URL.into()]));
    }
}
