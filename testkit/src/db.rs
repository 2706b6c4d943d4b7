//! Per-test PostgreSQL databases. The migrations are applied once to a template database (named
//! after a fingerprint of `migrations/`, built under an advisory lock so parallel test processes
//! build it once); each [`TestDb`] is a `CREATE DATABASE … TEMPLATE` copy, dropped on drop.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

const TEMPLATE_LOCK: i64 = 0x70_75_6c_73_65_74; // "pulset"

/// The maintenance database URL the test kit connects to.
pub fn admin_url() -> String {
    std::env::var("PULSE_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `admin_url()` with its database name replaced by `database`.
pub fn url_for(database: &str) -> String {
    let admin = admin_url();
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base.to_owned(), format!("?{query}")),
        None => (admin.clone(), String::new()),
    };
    let server = base.rsplit_once('/').map_or(base.as_str(), |(server, _)| server);
    format!("{server}/{database}{query}")
}

pub async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {url}: {error} (is PostgreSQL running?)"));
    tokio::spawn(connection);
    client
}

fn migrations_fingerprint() -> String {
    fn visit(dir: &Path, hasher: &mut DefaultHasher) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                visit(&path, hasher);
            } else if let Ok(content) = std::fs::read(&path) {
                path.file_name().hash(hasher);
                content.hash(hasher);
            }
        }
    }
    let mut hasher = DefaultHasher::new();
    visit(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations"),
        &mut hasher,
    );
    format!("{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let name = format!("pulse_tpl_{}", migrations_fingerprint());
            let admin = connect(&admin_url()).await;
            admin
                .execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK])
                .await
                .expect("template lock");
            let exists = admin
                .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
                .await
                .expect("pg_database")
                .is_some();
            if !exists {
                let building = format!("{name}_building");
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                    .await
                    .expect("drop half-built template");
                admin
                    .batch_execute(&format!("CREATE DATABASE {building}"))
                    .await
                    .expect("create template");
                pulse_shared::db::migrate_url(&url_for(&building), 7)
                    .await
                    .expect("migrate template");
                admin
                    .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                    .await
                    .expect("rename template");
                // Templates of older migration sets are of no use any more.
                let stale = admin
                    .query(
                        "SELECT datname FROM pg_database WHERE datname LIKE 'pulse\\_tpl\\_%' AND datname <> $1 \
                         AND datname NOT LIKE '%building'",
                        &[&name],
                    )
                    .await
                    .unwrap_or_default();
                for row in stale {
                    let old: String = row.get(0);
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {old} WITH (FORCE)"))
                        .await;
                }
            }
            admin
                .execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK])
                .await
                .expect("template unlock");
            name
        })
        .await
}

/// A project with an ingest+read API key, created straight in the database.
#[derive(Debug, Clone)]
pub struct TestProject {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub api_key: String,
    pub api_key_id: Uuid,
}

/// A migrated database of this test's own, dropped when the value is dropped.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn new() -> Self {
        let template = template().await;
        let name = format!("pulse_test_{}", &Uuid::new_v4().simple().to_string()[..16]);
        let admin = connect(&admin_url()).await;
        let mut attempt = 0;
        loop {
            match admin
                .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .await
            {
                Ok(()) => break,
                // Another test is cloning the same template at this instant.
                Err(error) if attempt < 50 && error.to_string().contains("being accessed by other users") => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("cannot create test database {name}: {error}"),
            }
        }
        Self {
            url: url_for(&name),
            name,
        }
    }

    /// A fresh connection to this database.
    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }

    /// Creates an organization, a project and an API key with scopes `ingest` and `read`.
    pub async fn create_project(&self) -> TestProject {
        let client = self.client().await;
        let organization_id = Uuid::now_v7();
        let id = Uuid::now_v7();
        let api_key_id = Uuid::now_v7();
        let key = pulse_shared::keys::generate();
        client
            .execute(
                "INSERT INTO organizations (id, name) VALUES ($1, $2)",
                &[&organization_id, &format!("org-{organization_id}")],
            )
            .await
            .expect("insert organization");
        client
            .execute(
                "INSERT INTO projects (id, organization_id, name) VALUES ($1, $2, 'test')",
                &[&id, &organization_id],
            )
            .await
            .expect("insert project");
        client
            .execute(
                "INSERT INTO api_keys (id, project_id, name, prefix, key_hash, scopes) \
                 VALUES ($1, $2, 'test', $3, $4, ARRAY['ingest','read'])",
                &[&api_key_id, &id, &key.prefix, &key.hash],
            )
            .await
            .expect("insert api key");
        TestProject {
            id,
            organization_id,
            api_key: key.plain,
            api_key_id,
        }
    }

    /// Rows in `events` for the project.
    pub async fn count_events(&self, project_id: Uuid) -> i64 {
        let client = self.client().await;
        client
            .query_one("SELECT count(*) FROM events WHERE project_id = $1", &[&project_id])
            .await
            .expect("count events")
            .get(0)
    }

    /// Distinct event ids in `events` for the project.
    pub async fn count_distinct_events(&self, project_id: Uuid) -> i64 {
        let client = self.client().await;
        client
            .query_one(
                "SELECT count(DISTINCT id) FROM events WHERE project_id = $1",
                &[&project_id],
            )
            .await
            .expect("count distinct events")
            .get(0)
    }

    /// Rows in `metric_points` for the project.
    pub async fn count_metric_points(&self, project_id: Uuid) -> i64 {
        let client = self.client().await;
        client
            .query_one(
                "SELECT count(*) FROM metric_points WHERE project_id = $1",
                &[&project_id],
            )
            .await
            .expect("count metric points")
            .get(0)
    }

    /// Waits until the project has at least `expected` metric points or `timeout` passed;
    /// returns the last count seen.
    pub async fn wait_for_metric_points(&self, project_id: Uuid, expected: i64, timeout: Duration) -> i64 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let count = self.count_metric_points(project_id).await;
            if count >= expected || tokio::time::Instant::now() >= deadline {
                return count;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the project has at least `expected` events or `timeout` passed; returns the
    /// last count seen (so a test can assert it is exactly `expected`).
    pub async fn wait_for_events(&self, project_id: Uuid, expected: i64, timeout: Duration) -> i64 {
        let client = self.client().await;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let count: i64 = client
                .query_one("SELECT count(*) FROM events WHERE project_id = $1", &[&project_id])
                .await
                .map(|row| row.get(0))
                .unwrap_or(-1);
            if count >= expected || tokio::time::Instant::now() >= deadline {
                return count;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::env::var_os("PULSE_TEST_KEEP_DB").is_some() {
            eprintln!("keeping test database {}", self.name);
            return;
        }
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which must not block on itself: use a thread.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async move {
                if let Ok((client, connection)) = tokio_postgres::connect(&admin_url(), NoTls).await {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}
