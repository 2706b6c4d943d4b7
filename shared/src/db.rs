//! PostgreSQL plumbing: the diesel-async connection pool (with `statement_timeout`,
//! `application_name` and bounded waits on every connection) and the embedded migrations,
//! applied under an advisory lock so that several processes starting at once migrate once.

use std::time::Duration;

use diesel::sql_types::{BigInt, Integer};
use diesel::ConnectionError;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use futures::FutureExt;

use crate::config::DatabaseConfig;
use crate::error::{Error, Result};

/// The pool every binary uses.
pub type DbPool = Pool<AsyncPgConnection>;
/// A connection checked out of [`DbPool`].
pub type DbConn = Object<AsyncPgConnection>;

/// Every migration under `migrations/`, compiled into the binaries.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Advisory lock key held while migrating ("pulse" in ASCII).
const MIGRATION_LOCK: i64 = 0x70_75_6c_73_65;

/// Builds the pool. Connections are opened lazily; the first checkout reports a bad URL.
pub fn build_pool(config: &DatabaseConfig, application_name: &str) -> Result<DbPool> {
    let setup_sql = format!(
        "SET application_name = '{}'; SET statement_timeout = {}",
        application_name.replace('\'', ""),
        config.statement_timeout.as_millis()
    );
    let mut manager_config = ManagerConfig::default();
    manager_config.custom_setup = Box::new(move |url| {
        let setup_sql = setup_sql.clone();
        async move {
            let mut conn = AsyncPgConnection::establish(url).await?;
            conn.batch_execute(&setup_sql)
                .await
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(&config.url, manager_config);
    Pool::builder(manager)
        .max_size(config.pool_size)
        .wait_timeout(Some(config.pool_timeout))
        .create_timeout(Some(config.pool_timeout))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|error| Error::Pool(error.to_string()))
}

/// Checks out a connection, mapping pool errors into [`Error`].
pub async fn connection(pool: &DbPool) -> Result<DbConn> {
    pool.get().await.map_err(|error| Error::Pool(error.to_string()))
}

/// `SELECT 1` through the pool: the readiness check.
pub async fn ping(pool: &DbPool) -> Result<()> {
    let mut conn = connection(pool).await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}

/// Applies pending migrations under a session advisory lock and makes sure the daily event
/// partitions exist `PULSE_EVENT_PARTITIONS_AHEAD_DAYS` ahead. Returns the versions it applied.
pub async fn migrate(database: &DatabaseConfig) -> Result<Vec<String>> {
    migrate_url(&database.url, database.partitions_ahead_days).await
}

/// [`migrate`] for a bare URL (test databases, the benchmark's scratch database).
pub async fn migrate_url(url: &str, partitions_ahead_days: i32) -> Result<Vec<String>> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || migrate_blocking(&url, partitions_ahead_days))
        .await
        .map_err(|error| Error::Migration(format!("migration task failed: {error}")))?
}

fn migrate_blocking(url: &str, partitions_ahead_days: i32) -> Result<Vec<String>> {
    use diesel::{Connection, RunQueryDsl};
    let mut conn = <AsyncConnectionWrapper<AsyncPgConnection> as Connection>::establish(url)?;
    RunQueryDsl::execute(
        diesel::sql_query("SELECT pg_advisory_lock($1)").bind::<BigInt, _>(MIGRATION_LOCK),
        &mut conn,
    )?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(|error| Error::Migration(error.to_string()));
    let partitions = RunQueryDsl::execute(
        diesel::sql_query("SELECT pulse_ensure_event_partitions($1)").bind::<Integer, _>(partitions_ahead_days),
        &mut conn,
    );
    RunQueryDsl::execute(
        diesel::sql_query("SELECT pg_advisory_unlock($1)").bind::<BigInt, _>(MIGRATION_LOCK),
        &mut conn,
    )?;
    let applied = applied?;
    partitions?;
    Ok(applied)
}

/// Creates the daily event partitions from today to `days_ahead` days ahead; returns how many
/// it created. Safe to call from several processes at once.
pub async fn ensure_event_partitions(pool: &DbPool, days_ahead: i32) -> Result<i32> {
    #[derive(diesel::QueryableByName)]
    struct Created {
        #[diesel(sql_type = Integer)]
        created: i32,
    }
    let mut conn = connection(pool).await?;
    let row: Created = diesel::sql_query("SELECT pulse_ensure_event_partitions($1) AS created")
        .bind::<Integer, _>(days_ahead)
        .get_result(&mut conn)
        .await?;
    Ok(row.created)
}
