//! `pulse-scheduler`: runs Pulse's background work, so api replicas only serve requests.
//!
//! - `pulse-scheduler` (or `pulse-scheduler serve`): the registry's cron jobs on apalis cron
//!   streams, each tick run once across replicas (`cron.rs`, `runs.rs`, the jobs in `jobs/`),
//!   the interval loops (purge, rollup compaction) and the uptime-check loop (`monitors/`,
//!   which announces state changes through a Kafka producer); serves `/healthz`, `/readyz`,
//!   `/metrics` and `GET /jobs` (`status.rs`) on `PULSE_SCHEDULER_ADDR`.
//! - `pulse-scheduler run-once JOB`: runs one cron job now (claiming the tick of this second,
//!   or the next one if that is taken, so it shows in `GET /jobs`); exits 0 on success, 1 on failure with the error on stderr,
//!   2 with the job names for an unknown one.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use pulse_shared::config::{
    self, DatabaseConfig, DigestConfig, EmailConfig, KafkaConfig, LogConfig, MonitorConfig, RetentionConfig,
    SchedulerConfig,
};
use pulse_shared::kafka::probe::KafkaProbe;
use pulse_shared::kafka::producer::AckProducer;
use pulse_shared::monitor::Checker;
use pulse_shared::{db, ops, shutdown, startup, telemetry};

mod cron;
mod jobs;
mod monitors;
mod runs;
mod status;

use jobs::Settings;

#[derive(Parser)]
#[command(
    name = "pulse-scheduler",
    about = "Pulse scheduler: periodic maintenance, retention and uptime checks"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run every job on its schedule (the default).
    Serve,
    /// Run one job now and exit: 0 on success, 1 on failure.
    RunOnce {
        /// The job's name (see `GET /jobs`).
        job: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    config::load_dotenv();
    let cli = Cli::parse();
    let log = config::or_exit(LogConfig::from_env());
    let settings = Settings {
        database: config::or_exit(DatabaseConfig::from_env()),
        scheduler: config::or_exit(SchedulerConfig::from_env()),
        retention: config::or_exit(RetentionConfig::from_env()),
        monitor: config::or_exit(MonitorConfig::from_env()),
        digest: config::or_exit(DigestConfig::from_env()),
        email: config::or_exit(EmailConfig::from_env()),
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let kafka = config::or_exit(KafkaConfig::from_env());
            telemetry::init(&log);
            serve(settings, kafka).await
        }
        Command::RunOnce { job } => {
            telemetry::init(&log);
            run_once(settings, &job).await
        }
    }
}

async fn serve(settings: Settings, kafka: KafkaConfig) -> anyhow::Result<ExitCode> {
    let stop = shutdown::on_signal();
    if startup::migrate(&settings.database, &stop, None).await?.is_none() {
        tracing::info!("Stopped during start-up");
        return Ok(ExitCode::SUCCESS);
    }
    let pool = db::build_pool(&settings.database, "pulse-scheduler")?;
    let readiness = ops::Readiness::new(pool.clone(), KafkaProbe::new(&kafka)?);
    let registry = jobs::registry(&settings);
    let checker = Checker::new(&settings.monitor, &settings.email)?;
    let announcements = Arc::new(monitors::Announcements::new(kafka.clone(), AckProducer::new(&kafka)?));
    let mut loops = jobs::loops(&settings);
    loops.push(jobs::LoopJob {
        name: monitors::LOOP_NAME,
        interval: settings.monitor.poll_interval,
    });
    let status = Arc::new(status::Status {
        pool: pool.clone(),
        jobs: registry.clone(),
        loops,
    });
    let server = ops::serve_with(settings.scheduler.addr, readiness.clone(), status::configure(status))?;
    let server_handle = server.handle();
    let server_task = tokio::spawn(server);
    tracing::info!(addr = %settings.scheduler.addr, replica = settings.scheduler.replica, "Scheduler started");

    let scheduler = settings.scheduler.clone();
    let runner = Arc::new(cron::Runner {
        pool: pool.clone(),
        settings: Arc::new(settings),
        stop: stop.clone(),
    });
    let mut tasks: Vec<tokio::task::JoinHandle<()>> = registry
        .into_iter()
        .map(|job| cron::spawn(runner.clone(), job))
        .collect();
    tasks.push(tokio::spawn(jobs::rollups::run(
        pool.clone(),
        scheduler.rollup_compact_interval,
        scheduler.rollup_compact_batch,
        stop.clone(),
    )));
    tasks.push(tokio::spawn(monitors::run(
        pool.clone(),
        checker,
        announcements,
        stop.clone(),
    )));
    tasks.push(tokio::spawn(jobs::purge::run(
        pool,
        scheduler.purge_interval,
        scheduler.purge_batch_size,
        stop.clone(),
    )));
    for task in tasks {
        let _ = task.await;
    }

    readiness.start_draining();
    server_handle.stop(true).await;
    let _ = server_task.await;
    tracing::info!("Scheduler stopped");
    Ok(ExitCode::SUCCESS)
}

async fn run_once(settings: Settings, name: &str) -> anyhow::Result<ExitCode> {
    let registry = jobs::registry(&settings);
    let Some(job) = registry.iter().find(|job| job.name == name).cloned() else {
        let names: Vec<&str> = registry.iter().map(|job| job.name).collect();
        eprintln!("unknown job {name:?}; the jobs are: {}", names.join(", "));
        return Ok(ExitCode::from(2));
    };
    let stop = shutdown::on_signal();
    if startup::migrate(&settings.database, &stop, None).await?.is_none() {
        eprintln!("stopped during start-up");
        return Ok(ExitCode::FAILURE);
    }
    let pool = db::build_pool(&settings.database, "pulse-scheduler")?;
    let runner = cron::Runner {
        pool,
        settings: Arc::new(settings),
        stop,
    };
    // The tick is this second; if another run already has it (a cron tick, another run-once),
    // the next second's.
    let mut outcome = runner.run_now(&job).await;
    for _ in 0..3 {
        if outcome != cron::Outcome::Skipped {
            break;
        }
        let wait = 1_000 - u64::from(chrono::Utc::now().timestamp_subsec_millis()).min(999);
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        outcome = runner.run_now(&job).await;
    }
    match outcome {
        cron::Outcome::Ok(summary) => {
            println!("{name}: {summary}");
            Ok(ExitCode::SUCCESS)
        }
        cron::Outcome::Error(error) => {
            eprintln!("{name} failed: {error}");
            Ok(ExitCode::FAILURE)
        }
        cron::Outcome::Skipped => {
            eprintln!("{name}: every tick tried was already claimed by another run; try again");
            Ok(ExitCode::FAILURE)
        }
    }
}
