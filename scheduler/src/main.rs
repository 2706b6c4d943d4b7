//! `pulse-scheduler`: runs Pulse's background work, so api replicas only serve requests:
//! keeping the daily `events` partitions created ahead of need, purging deleted projects and
//! folding the rollup deltas (`jobs/`); retention and uptime checks (with apalis, once per due time across replicas) come
//! with their own issues. Serves `/healthz`, `/readyz` and `/metrics` on `PULSE_SCHEDULER_ADDR`.

use pulse_shared::config::{self, DatabaseConfig, KafkaConfig, LogConfig, SchedulerConfig};
use pulse_shared::kafka::probe::KafkaProbe;
use pulse_shared::{db, ops, shutdown, startup, telemetry};

mod jobs;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    config::load_dotenv();
    let log = config::or_exit(LogConfig::from_env());
    let database = config::or_exit(DatabaseConfig::from_env());
    let kafka = config::or_exit(KafkaConfig::from_env());
    let scheduler = config::or_exit(SchedulerConfig::from_env());
    telemetry::init(&log);

    let stop = shutdown::on_signal();
    if startup::migrate(&database, &stop, None).await?.is_none() {
        tracing::info!("Stopped during start-up");
        return Ok(());
    }
    let pool = db::build_pool(&database, "pulse-scheduler")?;
    let readiness = ops::Readiness::new(pool.clone(), KafkaProbe::new(&kafka)?);
    let server = ops::serve(scheduler.addr, readiness.clone())?;
    let server_handle = server.handle();
    let server_task = tokio::spawn(server);
    tracing::info!(addr = %scheduler.addr, "Scheduler started");

    let partitions = tokio::spawn(jobs::partitions::run(
        pool.clone(),
        database.partitions_ahead_days,
        stop.clone(),
    ));
    let compaction = tokio::spawn(jobs::rollups::run(
        pool.clone(),
        scheduler.rollup_compact_interval,
        scheduler.rollup_compact_batch,
        stop.clone(),
    ));
    let purge = tokio::spawn(jobs::purge::run(
        pool,
        scheduler.purge_interval,
        scheduler.purge_batch_size,
        stop.clone(),
    ));
    let _ = tokio::join!(partitions, purge, compaction);

    readiness.start_draining();
    server_handle.stop(true).await;
    let _ = server_task.await;
    tracing::info!("Scheduler stopped");
    Ok(())
}
