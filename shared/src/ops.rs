//! The operational endpoints every binary serves: `/healthz` (the process is alive),
//! `/readyz` (PostgreSQL and Kafka answer, and the process is not draining) and `/metrics`
//! (Prometheus text). The api mounts them on its own server; the worker and the scheduler run
//! them on a small server of their own ([`serve`]; [`serve_with`] adds routes of the binary's
//! own beside them, as the scheduler's `GET /jobs`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;

use crate::db::{self, DbPool};
use crate::kafka::probe::KafkaProbe;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What `/readyz` checks.
#[derive(Clone)]
pub struct Readiness {
    pool: DbPool,
    kafka: KafkaProbe,
    draining: Arc<AtomicBool>,
}

impl Readiness {
    pub fn new(pool: DbPool, kafka: KafkaProbe) -> Self {
        Self {
            pool,
            kafka,
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    /// From now on `/readyz` answers 503, so load balancers stop sending traffic.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    async fn report(&self) -> (bool, serde_json::Value) {
        let (database, kafka) = tokio::join!(
            async {
                match tokio::time::timeout(CHECK_TIMEOUT, db::ping(&self.pool)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(error)) => Err(error.to_string()),
                    Err(_) => Err("timed out".to_owned()),
                }
            },
            self.kafka.check(CHECK_TIMEOUT)
        );
        let draining = self.draining.load(Ordering::SeqCst);
        let ready = database.is_ok() && kafka.is_ok() && !draining;
        let show = |result: &Result<(), String>| match result {
            Ok(()) => "ok".to_owned(),
            Err(error) => error.clone(),
        };
        (
            ready,
            json!({
                "status": if ready { "ready" } else { "not_ready" },
                "draining": draining,
                "checks": { "database": show(&database), "kafka": show(&kafka) },
            }),
        )
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    let (ready, body) = readiness.report().await;
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(body)
    }
}

async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::metrics::render())
}

/// Mounts the three endpoints; `readiness` must be in the app data.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

/// Runs a one-thread server with the three endpoints until the returned handle is stopped.
pub fn serve(addr: SocketAddr, readiness: Readiness) -> std::io::Result<actix_web::dev::Server> {
    serve_with(addr, readiness, |_| {})
}

/// [`serve`] with more routes beside the three endpoints: `extra` mounts them (the scheduler's
/// `GET /jobs`). It runs once per server worker, so it clones what it captures.
pub fn serve_with<F>(addr: SocketAddr, readiness: Readiness, extra: F) -> std::io::Result<actix_web::dev::Server>
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let data = web::Data::new(readiness);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(configure)
            .configure(extra.clone())
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(addr)?
    .run();
    Ok(server)
}
