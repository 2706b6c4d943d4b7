//! Command line: `pulse-api [serve]`, `pulse-api migrate`,
//! `pulse-api admin create-project --org NAME --name NAME`. Configuration comes from `PULSE_*`
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
    }
}
