//! `pulse-api` entry point: reads the configuration (one clear line and exit 2 on a bad
//! variable), installs logging and runs the chosen subcommand on the actix runtime.

use std::process::ExitCode;

use clap::Parser;
use pulse_api::admin;
use pulse_api::cli::{AdminCommand, Cli, Command};
use pulse_api::serve::{self, ServeConfig};
use pulse_shared::config::{
    self, AlertConfig, ApiConfig, AuthConfig, DatabaseConfig, EmailConfig, KafkaConfig, LogConfig, MonitorConfig,
    QueryConfig, StreamConfig, WebhookConfig,
};
use pulse_shared::{db, telemetry};

fn main() -> ExitCode {
    config::load_dotenv();
    let cli = Cli::parse();
    let log = config::or_exit(LogConfig::from_env());
    let database = config::or_exit(DatabaseConfig::from_env());
    let command = cli.command.unwrap_or(Command::Serve);
    // Read every area the command needs before doing anything, so a bad variable stops it first.
    let serve_config = match command {
        Command::Serve => Some(ServeConfig {
            api: config::or_exit(ApiConfig::from_env()),
            database: database.clone(),
            kafka: config::or_exit(KafkaConfig::from_env()),
            auth: config::or_exit(AuthConfig::from_env()),
            query: config::or_exit(QueryConfig::from_env()),
            stream: config::or_exit(StreamConfig::from_env()),
            webhook: config::or_exit(WebhookConfig::from_env()),
            alert: config::or_exit(AlertConfig::from_env()),
            email: config::or_exit(EmailConfig::from_env()),
            monitor: config::or_exit(MonitorConfig::from_env()),
        }),
        Command::Migrate | Command::Admin { .. } => None,
    };
    telemetry::init(&log);

    let result = actix_web::rt::System::new().block_on(async move {
        match (command, serve_config) {
            (Command::Serve, Some(serve_config)) => serve::run(serve_config).await,
            (Command::Migrate, _) => {
                let applied = db::migrate(&database).await?;
                if applied.is_empty() {
                    println!("no pending migrations");
                }
                for version in applied {
                    println!("applied {version}");
                }
                Ok(())
            }
            (
                Command::Admin {
                    command: AdminCommand::CreateProject { org, name },
                },
                _,
            ) => {
                db::migrate(&database).await?;
                let created = admin::create_project(&database, &org, &name).await?;
                println!("{}", serde_json::to_string(&created)?);
                Ok(())
            }
            (
                Command::Admin {
                    command: AdminCommand::RebuildRollups { project, from, to },
                },
                _,
            ) => {
                db::migrate(&database).await?;
                let rebuilt = admin::rollups::rebuild_rollups(&database, project, from, to).await?;
                println!("{}", serde_json::to_string(&rebuilt)?);
                Ok(())
            }
            (
                Command::Admin {
                    command: AdminCommand::SendDigest { project, date },
                },
                _,
            ) => {
                let email = config::or_exit(EmailConfig::from_env());
                db::migrate(&database).await?;
                let sent = admin::digest::send_digest(&database, &email, project, date).await?;
                println!("{}", serde_json::to_string(&sent)?);
                Ok(())
            }
            (Command::Serve, None) => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "Exiting");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
