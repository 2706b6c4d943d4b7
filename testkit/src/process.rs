//! Real `pulse-api`, `pulse-worker` and `pulse-scheduler` processes for a test: spawned from the
//! workspace's target directory with the test's own environment, output captured to a log file,
//! ready once `/readyz` answers 200, stoppable with SIGKILL or SIGTERM. Killed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::net::free_port;
use crate::{TestDb, TestKafka};

/// `PULSE_JWT_SECRET` of the test processes (the api refuses to start without one).
pub const TEST_JWT_SECRET: &str = "pulse-test-jwt-secret-0123456789abcdef";

/// The environment of the Pulse processes of one test.
#[derive(Debug, Clone)]
pub struct PulseEnv {
    vars: Vec<(String, String)>,
}

impl PulseEnv {
    pub fn new(db: &TestDb, kafka: &TestKafka) -> Self {
        Self::empty()
            .set("PULSE_DATABASE_URL", &db.url)
            .set("PULSE_KAFKA_BROKERS", &kafka.brokers)
            .set("PULSE_TOPIC_PREFIX", &kafka.prefix)
            // A consumer group of the test's own: groups span topics, so a group shared by
            // concurrent tests would rebalance all of them whenever one worker comes or goes.
            .set("PULSE_WORKER_GROUP", &format!("{}persist", kafka.prefix))
            .set("PULSE_WORKER_METRICS_GROUP", &format!("{}metrics", kafka.prefix))
            .set("PULSE_KAFKA_PARTITIONS", &crate::kafka::TEST_PARTITIONS.to_string())
            .set("PULSE_DATABASE_POOL_SIZE", "4")
            .set("PULSE_API_WORKERS", "2")
            .set("PULSE_SHUTDOWN_TIMEOUT_SECS", "10")
            .set("PULSE_JWT_SECRET", TEST_JWT_SECRET)
    }

    pub fn empty() -> Self {
        Self {
            vars: vec![
                ("PULSE_LOG".into(), "info".into()),
                ("PULSE_LOG_FORMAT".into(), "text".into()),
            ],
        }
    }

    /// Sets (or replaces) a variable.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.vars.retain(|(k, _)| k != key);
        self.vars.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Where the pulse binaries are: `PULSE_BIN_DIR`, else the target directory of this test.
pub fn bin_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("PULSE_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("current exe");
        let deps = exe.parent().expect("deps dir");
        deps.parent().expect("profile dir").to_path_buf()
    });
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} not found: build the workspace first (cargo build --workspace)",
        path.display()
    );
    path
}

pub struct PulseProcess {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
    /// Base URL of the process's HTTP server (api routes, or health and metrics).
    base_url: String,
}

impl PulseProcess {
    /// Starts `pulse-api serve` on a free port and waits until it is ready.
    pub async fn api(env: &PulseEnv) -> Self {
        let port = free_port();
        let env = env.clone().set("PULSE_API_ADDR", &format!("127.0.0.1:{port}"));
        Self::start_ready("pulse-api", &["serve"], &env, port).await
    }

    /// Starts `pulse-worker` with its health server on a free port and waits until it is ready.
    pub async fn worker(env: &PulseEnv) -> Self {
        let port = free_port();
        let env = env.clone().set("PULSE_WORKER_ADDR", &format!("127.0.0.1:{port}"));
        Self::start_ready("pulse-worker", &[], &env, port).await
    }

    /// Starts `pulse-worker metrics` (the named-metrics consumer group) with its health server
    /// on a free port and waits until it is ready.
    pub async fn metrics_worker(env: &PulseEnv) -> Self {
        let port = free_port();
        let env = env.clone().set("PULSE_WORKER_ADDR", &format!("127.0.0.1:{port}"));
        Self::start_ready("pulse-worker", &["metrics"], &env, port).await
    }

    /// Starts `pulse-worker notify` (webhook delivery) with its health server on a free port
    /// and waits until it is ready.
    pub async fn notify_worker(env: &PulseEnv) -> Self {
        let port = free_port();
        let env = env.clone().set("PULSE_WORKER_ADDR", &format!("127.0.0.1:{port}"));
        Self::start_ready("pulse-worker", &["notify"], &env, port).await
    }

    /// Starts `pulse-scheduler` and waits until it is ready.
    pub async fn scheduler(env: &PulseEnv) -> Self {
        let port = free_port();
        let env = env.clone().set("PULSE_SCHEDULER_ADDR", &format!("127.0.0.1:{port}"));
        Self::start_ready("pulse-scheduler", &[], &env, port).await
    }

    async fn start_ready(bin: &str, args: &[&str], env: &PulseEnv, port: u16) -> Self {
        let mut process = Self::spawn(bin, args, env);
        process.base_url = format!("http://127.0.0.1:{port}");
        process.wait_ready(Duration::from_secs(60)).await;
        process
    }

    /// Starts a binary without waiting for anything (for commands such as `migrate`).
    pub fn spawn(bin: &str, args: &[&str], env: &PulseEnv) -> Self {
        let dir = std::env::temp_dir().join("pulse-test-logs");
        std::fs::create_dir_all(&dir).expect("log dir");
        let log = dir.join(format!("{bin}-{}.log", uuid::Uuid::new_v4().simple()));
        let file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(bin_path(bin));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file);
        for (key, value) in &env.vars {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {bin}: {error}"));
        Self {
            name: bin.to_owned(),
            child: Some(child),
            log,
            base_url: String::new(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits for `/readyz` to answer 200; panics with the process's output if it never does.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let client = reqwest::Client::new();
        let url = format!("{}/readyz", self.base_url);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(response) = client.get(&url).timeout(Duration::from_secs(3)).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "{} exited with {status} before it was ready:\n{}",
                    self.name,
                    self.logs()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} not ready within {timeout:?}:\n{}",
                self.name,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits up to `timeout` for the exit; returns the exit status.
    pub async fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("process running");
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not exit within {timeout:?} of SIGTERM:\n{}",
                    self.name,
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the process to exit on its own (for one-shot commands).
    pub async fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("process running");
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} still running after {timeout:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the process printed so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The value of a Prometheus sample (`name{labels}` as printed) from `/metrics`, summed over
    /// all label sets when `name` has no labels in it.
    pub async fn metric(&self, name: &str) -> f64 {
        let body = reqwest::get(format!("{}/metrics", self.base_url))
            .await
            .and_then(|response| response.error_for_status())
            .expect("metrics")
            .text()
            .await
            .unwrap_or_default();
        body.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.rsplit_once(' '))
            .filter(|(series, _)| {
                *series == name || series.strip_prefix(name).is_some_and(|rest| rest.starts_with('{'))
            })
            .filter_map(|(_, value)| value.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for PulseProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- {} output ({}) ----\n{}",
                self.name,
                self.log.display(),
                self.logs()
            );
        }
    }
}

/// A free port, exposed for tests that configure addresses themselves.
pub fn port() -> u16 {
    free_port()
}
