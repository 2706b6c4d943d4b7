//! `pulse-bench`: load generator for the Pulse ingest api and the PostgreSQL COPY baseline that
//! its end-to-end figure is compared with.
//!
//! * `pulse-bench load --url URL --api-key KEY --concurrency C --batch-size B (--duration S |
//!   --events N) [--rate R] [--database-url URL --project-id ID] [--json]`
//! * `pulse-bench copy-baseline --database-url URL --rows N [--batch 2000] [--json]`
//! * `pulse-bench seed --database-url URL --project-id ID --events N --days D --end T`
//! * `pulse-bench queries --url URL --api-key KEY --end T [--rounds 50] [--export-days 3]`
//! * `pulse-bench stream --url URL --api-key KEY --clients N [--filter Q] [--seconds S]`, or
//!   `--idle --api-pid PID`: live-stream clients (delay, or the api's memory per connection)
//! * `pulse-bench metrics --url URL --api-key KEY [--points 200000] [--batch-size 500]
//!   [--concurrency 8] [--series 100] [--latest-rounds 500] [--database-url URL --project-id ID]`
//! * `pulse-bench webhook-receiver --addr 127.0.0.1:PORT`: answers webhooks 200, counts them and
//!   times each event from acceptance to receipt (`GET /stats`, `POST /reset`)
//!
//! Method and recorded results: `bench/RESULTS.md`; the full measured run: `scripts/bench.sh`.

mod baseline;
mod http;
mod load;
mod metrics;
mod parse;
mod payload;
mod persisted;
mod queries;
mod receiver;
mod report;
mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

use crate::persisted::MarkerTracker;
use crate::report::{Percentiles, PersistedReport};

#[derive(Parser)]
#[command(
    name = "pulse-bench",
    version,
    about = "Pulse load generator and PostgreSQL COPY baseline"
)]
struct Cli {
    /// Tokio worker threads of the generator.
    #[arg(long, global = true, default_value_t = 2)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send events to the api and report throughput and latency (and, with --database-url,
    /// end-to-end storage rate and delay).
    Load(LoadArgs),
    /// Measure how fast PostgreSQL stores the same rows by binary COPY and by the worker's insert.
    CopyBaseline(BaselineArgs),
    /// Compare the api's event parser (hand-written visitor) with a derived one.
    Parse(ParseArgs),
    /// Store a month of generated events straight into PostgreSQL (the read benchmark's data).
    Seed(SeedArgs),
    /// Time the read routes (and one CSV export) against seeded data; prints one JSON line.
    Queries(QueriesArgs),
    /// Hold live-stream (SSE) connections: event delay, or with --idle the api's memory per
    /// connection; prints one JSON line.
    Stream(StreamArgs),
    /// Named metrics: ingest rate (and, with --database-url, storage rate) and `latest`
    /// latency; prints one JSON line.
    Metrics(MetricsArgs),
    /// Receive webhooks: count them and time each event from acceptance (GET /stats).
    WebhookReceiver(ReceiverArgs),
}

#[derive(Args)]
struct ReceiverArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:9200")]
    addr: String,
}

#[derive(Args)]
struct StreamArgs {
    /// Base URL of pulse-api.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A key with the `read` scope.
    #[arg(long, env = "PULSE_BENCH_API_KEY")]
    api_key: String,
    /// Connections.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Query string of each connection (`event_type=error&source=backend`).
    #[arg(long, default_value = "")]
    filter: String,
    /// Stop after this long (or at SIGTERM/SIGINT).
    #[arg(long, default_value_t = 3600.0)]
    seconds: f64,
    /// Measure the api's memory with idle connections instead (needs --api-pid).
    #[arg(long)]
    idle: bool,
    /// The api's process id, for --idle.
    #[arg(long)]
    api_pid: Option<u32>,
}

#[derive(Args)]
struct MetricsArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A key of the project with the `ingest` and `read` scopes.
    #[arg(long, env = "PULSE_BENCH_API_KEY", hide_env_values = true)]
    api_key: String,
    #[arg(long, default_value_t = 200_000)]
    points: u64,
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Distinct label sets (hosts).
    #[arg(long, default_value_t = 100)]
    series: usize,
    /// Timed requests of each `latest` form.
    #[arg(long, default_value_t = 500)]
    latest_rounds: u64,
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long)]
    project_id: Option<Uuid>,
}

#[derive(Args)]
struct SeedArgs {
    #[arg(long, env = "PULSE_DATABASE_URL", hide_env_values = true)]
    database_url: String,
    #[arg(long)]
    project_id: Uuid,
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    #[arg(long, default_value_t = 30)]
    days: i64,
    /// The end of the seeded range (RFC 3339).
    #[arg(long)]
    end: chrono::DateTime<chrono::Utc>,
    /// Rows per COPY transaction.
    #[arg(long, default_value_t = 200_000)]
    chunk: usize,
}

#[derive(Args)]
struct QueriesArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A key of the project with the `read` scope.
    #[arg(long, env = "PULSE_BENCH_API_KEY", hide_env_values = true)]
    api_key: String,
    /// The end of the seeded range (RFC 3339).
    #[arg(long)]
    end: chrono::DateTime<chrono::Utc>,
    /// Timed requests per query.
    #[arg(long, default_value_t = 50)]
    rounds: u64,
    /// Days of events the CSV export covers (0: no export).
    #[arg(long, default_value_t = 3)]
    export_days: i64,
}

#[derive(Args)]
struct ParseArgs {
    /// Events per round.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Rounds (alternating the two parsers); the median counts.
    #[arg(long, default_value_t = 9)]
    rounds: usize,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("budget").required(true).args(["duration", "events"])))]
struct LoadArgs {
    /// Base URL of pulse-api.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Ingest API key of the project.
    #[arg(long, env = "PULSE_BENCH_API_KEY", hide_env_values = true)]
    api_key: String,
    /// Requests in flight at once (one connection each).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Events per request: 1 posts to /v1/events, more to /v1/events/batch.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    batch_size: u16,
    /// Stop sending after this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Stop after sending this many events.
    #[arg(long)]
    events: Option<u64>,
    /// Target events per second (open loop); default: as fast as the api answers.
    #[arg(long)]
    rate: Option<f64>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// PostgreSQL URL of the api's database: wait for storage and time it.
    #[arg(long, requires = "project_id")]
    database_url: Option<String>,
    /// Project the API key belongs to (its events are counted).
    #[arg(long)]
    project_id: Option<Uuid>,
    /// Every n-th request carries a timed marker event (default: every request of a batch of 50 or
    /// more, else about one per 50 events).
    #[arg(long)]
    marker_every: Option<u64>,
    /// Marker poll interval in milliseconds.
    #[arg(long, default_value_t = 15)]
    poll_ms: u64,
    /// Longest wait for storage after the load, in seconds.
    #[arg(long, default_value_t = 600.0)]
    persist_timeout: f64,
    /// Also print the report as one JSON line (last line of output).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BaselineArgs {
    /// Maintenance database URL (a database to connect to while creating the scratch one).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    database_url: String,
    /// Rows stored by each phase.
    #[arg(long, default_value_t = 500_000)]
    rows: u64,
    /// Rows per transaction of the batched phases (the worker's batch size).
    #[arg(long, default_value_t = 2_000)]
    batch: usize,
    /// Also print the report as one JSON line (last line of output).
    #[arg(long)]
    json: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        match cli.command {
            Command::Load(args) => run_load(args).await,
            Command::CopyBaseline(args) => run_baseline(args).await,
            Command::Seed(args) => {
                let seeded = queries::seed(
                    &args.database_url,
                    args.project_id,
                    args.events,
                    args.days,
                    args.end,
                    args.chunk.max(1),
                )
                .await?;
                println!("{}", serde_json::to_string(&seeded)?);
                Ok(())
            }
            Command::Queries(args) => {
                let base = args.url.trim_end_matches('/');
                let export = if args.export_days > 0 {
                    Some(queries::time_export(base, &args.api_key, args.end, args.export_days).await?)
                } else {
                    None
                };
                let timings = queries::time_queries(base, &args.api_key, args.end, args.rounds.max(1)).await?;
                println!("{}", serde_json::json!({"export": export, "queries": timings}));
                Ok(())
            }
            Command::Stream(args) => {
                anyhow::ensure!(args.clients > 0, "--clients must be positive");
                let line = if args.idle {
                    let pid = args.api_pid.context("--idle needs --api-pid")?;
                    serde_json::to_string(
                        &stream::idle(&args.url, &args.api_key, args.clients, pid, Duration::from_secs(5)).await?,
                    )?
                } else {
                    serde_json::to_string(
                        &stream::run(&args.url, &args.api_key, args.clients, &args.filter, args.seconds).await?,
                    )?
                };
                println!("{line}");
                Ok(())
            }
            Command::WebhookReceiver(args) => receiver::run(&args.addr).await,
            Command::Metrics(args) => {
                let report = metrics::run(metrics::Plan {
                    url: args.url.trim_end_matches('/').to_owned(),
                    api_key: args.api_key,
                    points: args.points,
                    batch_size: args.batch_size,
                    concurrency: args.concurrency,
                    series: args.series,
                    latest_rounds: args.latest_rounds,
                    storage: args.database_url.zip(args.project_id),
                })
                .await?;
                eprintln!("pulse-bench: {report:#?}");
                println!("{}", serde_json::to_string(&report)?);
                Ok(())
            }
            Command::Parse(args) => {
                anyhow::ensure!(
                    args.events > 0 && args.rounds > 0,
                    "--events and --rounds must be positive"
                );
                let comparison = parse::compare(args.events, args.rounds)?;
                println!("{}", serde_json::to_string(&comparison)?);
                Ok(())
            }
        }
    })
}

async fn run_baseline(args: BaselineArgs) -> Result<()> {
    anyhow::ensure!(args.rows > 0, "--rows must be positive");
    let report = baseline::run(&args.database_url, args.rows, args.batch).await?;
    report.print_human();
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

async fn run_load(args: LoadArgs) -> Result<()> {
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be positive");
    anyhow::ensure!(args.duration.is_none_or(|d| d > 0.0), "--duration must be positive");
    anyhow::ensure!(args.rate.is_none_or(|r| r > 0.0), "--rate must be positive");
    let batch_size = usize::from(args.batch_size);
    let plan = load::LoadPlan {
        base_url: args.url.clone(),
        api_key: args.api_key.clone(),
        concurrency: args.concurrency,
        batch_size,
        duration: args.duration.map(Duration::from_secs_f64),
        events: args.events,
        rate: args.rate,
        request_timeout: Duration::from_secs_f64(args.timeout),
        marker_every: args.marker_every.unwrap_or((50 / batch_size as u64).max(1)),
    };
    let pool = payload::body_pool_size(batch_size);
    let bodies = Arc::new(payload::bodies(0x5EED, pool, batch_size));

    let storage = match (&args.database_url, args.project_id) {
        (Some(url), Some(project_id)) => {
            let counter = persisted::connect(url).await?;
            let before = persisted::count_ids(&counter, project_id).await?;
            let events_before = persisted::count_events(&counter, project_id).await?;
            Some((url.clone(), project_id, counter, before, events_before))
        }
        _ => None,
    };

    let start = Instant::now();
    let poll = Duration::from_millis(args.poll_ms.max(1));
    let persist_timeout = Duration::from_secs_f64(args.persist_timeout);
    let tracker = match &storage {
        Some((url, ..)) => Some(MarkerTracker::start(
            persisted::connect(url).await?,
            start,
            poll,
            persist_timeout,
        )),
        None => None,
    };
    let outcome = load::run(&plan, bodies, start, tracker.as_ref().map(MarkerTracker::sender)).await?;
    let mut report = outcome.report;

    if let (Some((_, project_id, counter, before, events_before)), Some(tracker)) = (storage, tracker) {
        eprintln!(
            "pulse-bench: load done ({} events accepted); waiting for storage",
            report.accepted_events
        );
        // Markers first (cheap probes); the costlier counts only for the tail.
        let waiting_since = Instant::now();
        let markers = tracker.finish().await?;
        let remaining = persist_timeout.saturating_sub(waiting_since.elapsed());
        let target = before + report.accepted_events;
        let count = persisted::wait_for_count(&counter, project_id, target, start, remaining).await?;
        let events_rows = persisted::count_events(&counter, project_id)
            .await?
            .saturating_sub(events_before);
        let stored = count.stored.saturating_sub(before);
        let first = outcome.first_accept.unwrap_or_default();
        let end_to_end = count.seen_at.saturating_sub(first);
        report.persisted = Some(PersistedReport {
            stored_events: stored,
            events_rows,
            complete: count.complete,
            end_to_end_s: end_to_end.as_secs_f64(),
            end_to_end_events_per_s: report::rate(stored, end_to_end),
            drain_after_load_s: count.seen_at.saturating_sub(outcome.finished_at).as_secs_f64(),
            delay: Percentiles::of(&markers.delays),
            delay_uncertainty_p99_ms: Percentiles::of(&markers.uncertainty).p99_ms,
            markers: markers.markers,
            markers_missing: markers.missing,
            poll_interval_ms: poll.as_millis() as u64,
        });
    }

    report.print_human();
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}
