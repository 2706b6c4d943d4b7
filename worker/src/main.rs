//! `pulse-worker`: reads its configuration, installs logging and signal handling, and runs the
//! persist consumer until SIGTERM or SIGINT (exit 0 after a clean drain, 1 on a fatal error,
//! 2 on bad configuration).

use std::process::ExitCode;

use pulse_shared::config::{self, LogConfig};
use pulse_shared::{shutdown, telemetry};
use pulse_worker::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    config::load_dotenv();
    let log = config::or_exit(LogConfig::from_env());
    let settings = config::or_exit(Settings::from_env());
    telemetry::init(&log);
    let stop = shutdown::on_signal();
    match pulse_worker::run(settings, stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "Worker failed");
            ExitCode::FAILURE
        }
    }
}
