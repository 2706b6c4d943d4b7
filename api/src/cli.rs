//! Command line: `pulse-api [serve]`, `pulse-api migrate`,
//! `pulse-api admin create-project --org NAME --name NAME`,
//! `pulse-api admin rebuild-rollups --project ID --from T --to T`,
//! `pulse-api admin send-digest --project ID --date YYYY-MM-DD`. Configuration comes from `PULSE_*`
//! environment variables only (see `pulse_shared::config`), never from flags.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "pulse-api", version, about = "Pulse HTTP api: event ingest")]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply pending database migrations and print the versions applied.
    Migrate,
    /// Administrative tasks.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create (or find) an organization and a project, and issue a new API key for it.
    /// Prints {"organization_id","project_id","api_key","api_key_prefix"} as JSON.
    CreateProject {
        /// Organization name (found by name, created if missing).
        #[arg(long)]
        org: String,
        /// Project name within the organization (found or created).
        #[arg(long)]
        name: String,
    },
    /// Recompute a project's rollups over a range from its raw events (idempotent).
    /// Prints {"project_id","from","to","events","rows_deleted","rows_written"} as JSON.
    RebuildRollups {
        /// The project's id.
        #[arg(long)]
        project: uuid::Uuid,
        /// Start of the range, RFC 3339 (rounded down to the minute).
        #[arg(long)]
        from: chrono::DateTime<chrono::Utc>,
        /// End of the range (exclusive), RFC 3339 (rounded up to the minute).
        #[arg(long)]
        to: chrono::DateTime<chrono::Utc>,
    },
    /// Write a project's daily digest of a UTC day into the email outbox now, for every
    /// subscriber (a re-send of a day already sent goes out again, under a new Message-ID).
    /// Prints {"project_id","date","message_id","sequence","recipients"} as JSON.
    SendDigest {
        /// The project's id.
        #[arg(long)]
        project: uuid::Uuid,
        /// The UTC day, YYYY-MM-DD.
        #[arg(long)]
        date: chrono::NaiveDate,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_command() {
        assert!(Cli::try_parse_from(["pulse-api"]).expect("bare").command.is_none());
        assert!(matches!(
            Cli::try_parse_from(["pulse-api", "migrate"]).expect("migrate").command,
            Some(Command::Migrate)
        ));
        let cli = Cli::try_parse_from(["pulse-api", "admin", "create-project", "--org", "acme", "--name", "web"])
            .expect("admin");
        match cli.command {
            Some(Command::Admin {
                command: AdminCommand::CreateProject { org, name },
            }) => assert_eq!((org.as_str(), name.as_str()), ("acme", "web")),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["pulse-api", "admin", "create-project", "--org", "acme"]).is_err());
        let rebuild = Cli::try_parse_from([
            "pulse-api",
            "admin",
            "rebuild-rollups",
            "--project",
            "0192f0c1-0000-7000-8000-000000000001",
            "--from",
            "2026-12-01T00:00:00Z",
            "--to",
            "2026-12-02T00:00:00+01:00",
        ])
        .expect("rebuild");
        assert!(matches!(
            rebuild.command,
            Some(Command::Admin {
                command: AdminCommand::RebuildRollups { .. }
            })
        ));
        let digest = Cli::try_parse_from([
            "pulse-api",
            "admin",
            "send-digest",
            "--project",
            "0192f0c1-0000-7000-8000-000000000001",
            "--date",
            "2026-12-01",
        ])
        .expect("send-digest");
        match digest.command {
            Some(Command::Admin {
                command: AdminCommand::SendDigest { date, .. },
            }) => assert_eq!(date.to_string(), "2026-12-01"),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from([
            "pulse-api",
            "admin",
            "send-digest",
            "--project",
            "x",
            "--date",
            "2026-12-01"
        ])
        .is_err());
        assert!(Cli::try_parse_from([
            "pulse-api",
            "admin",
            "send-digest",
            "--project",
            "0192f0c1-0000-7000-8000-000000000001",
            "--date",
            "yesterday"
        ])
        .is_err());
        assert!(Cli::try_parse_from([
            "pulse-api",
            "admin",
            "rebuild-rollups",
            "--project",
            "x",
            "--from",
            "a",
            "--to",
            "b"
        ])
        .is_err());
    }
}
