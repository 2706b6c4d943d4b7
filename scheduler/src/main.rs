//! `pulse-scheduler`: runs Pulse's periodic maintenance. Today that is keeping the daily
//! `events` partitions created ahead of need; retention and uptime checks (with apalis, once per
//! due time across replicas) come with their own issues. Serves `/healthz`, `/readyz` and
//! `/metrics` on `PULSE_SCHEDULER_ADDR`.

use pulse_shared::config::{self, DatabaseConfig, KafkaConfig, LogConfig, SchedulerConfig};
use pulse_shared::kafka::probe::KafkaProbe;
use pulse_shared::{db, ops, shutdown, telemetry};

mod partitions;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    config::load_dotenv();
    let log = config::or_exit(LogConfig::from_env());
    let database = config::or_exit(DatabaseConfig::from_env());
    let kafka = config::or_exit(KafkaConfig::from_env());
    let scheduler = config::or_exit(SchedulerConfig::from_env());
    telemetry::init(&log);

    let stop = shutdown::on_signal();
    let applied = db::migrate(&database.url, scheduler.partitions_ahead_days).await?;
    tracing::info!(applied = applied.len(), "Migrations applied");
    let pool = db::build_pool(&database, "pulse-scheduler")?;
    let readiness = ops::Readiness::new(pool.clone(), KafkaProbe::new(&kafka)?);
    let server = ops::serve(scheduler.addr, readiness.clone())?;
    let server_handle = server.handle();
    let server_task = tokio::spawn(server);
    tracing::info!(addr = %scheduler.addr, "Scheduler started");

    partitions::run(&pool, scheduler.partitions_ahead_days, stop.clone()).await;

    readiness.start_draining();
    server_handle.stop(true).await;
    let _ = server_task.await;
    tracing::info!("Scheduler stopped");
    Ok(())
}
