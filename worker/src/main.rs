//! `pulse-worker [ROLE]`: reads its configuration, installs logging and signal handling, and
//! runs the consumer group of ROLE (`persist`, the default, `metrics` or `notify`) until SIGTERM or SIGINT (exit 0
//! after a clean drain, 1 on a fatal error, 2 on bad configuration or an unknown role).

use std::process::ExitCode;

use pulse_shared::config::{self, LogConfig};
use pulse_shared::{shutdown, telemetry};
use pulse_worker::{Role, Settings};

#[tokio::main]
async fn main() -> ExitCode {
    config::load_dotenv();
    let log = config::or_exit(LogConfig::from_env());
    let role = match std::env::args().nth(1).as_deref().map(str::parse::<Role>) {
        None => Role::default(),
        Some(Ok(role)) => role,
        Some(Err(error)) => {
            eprintln!("usage: pulse-worker [persist|metrics|notify]: {error}");
            return ExitCode::from(2);
        }
    };
    let settings = config::or_exit(Settings::from_env());
    telemetry::init(&log);
    let stop = shutdown::on_signal();
    match pulse_worker::run(settings, role, stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "Worker failed");
            ExitCode::FAILURE
        }
    }
}
