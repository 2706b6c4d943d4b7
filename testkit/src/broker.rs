//! A Tansu broker of a test's own, for tests that stop and restart the broker. In memory by
//! default; [`TestBroker::start_durable`] keeps its data in a SQLite file, so messages survive a
//! restart the way they do on a real Kafka.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::net::{free_port, wait_for_port};

/// The Tansu binary: `PULSE_TANSU_BIN`, else `tansu` on PATH, else the CI cache.
pub fn tansu_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("PULSE_TANSU_BIN") {
        return bin.into();
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("tansu"))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    on_path.unwrap_or_else(|| "/opt/pulse-cache/tansu/bin/tansu".into())
}

pub struct TestBroker {
    addr: SocketAddr,
    workdir: PathBuf,
    storage: String,
    child: Option<Child>,
}

impl TestBroker {
    /// An in-memory broker on a free port.
    pub async fn start() -> Self {
        Self::launch("memory://tansu/".to_owned()).await
    }

    /// A broker whose data is kept in SQLite and survives [`Self::stop`] / [`Self::start_again`].
    pub async fn start_durable() -> Self {
        // Tansu resolves the sqlite path against its working directory.
        Self::launch("sqlite://broker.db".to_owned()).await
    }

    async fn launch(storage: String) -> Self {
        let workdir = std::env::temp_dir().join(format!("pulse-broker-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&workdir).expect("broker workdir");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let mut broker = Self {
            addr,
            workdir,
            storage,
            child: None,
        };
        broker.start_again().await;
        broker
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn brokers(&self) -> String {
        self.addr.to_string()
    }

    /// Starts the broker process (again, on the same port and storage).
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let url = format!("tcp://{}", self.addr);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.workdir.join("tansu.log"))
            .expect("broker log");
        let child = Command::new(tansu_bin())
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", &self.storage])
            .current_dir(&self.workdir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start Tansu ({}): {error}; run scripts/install-tansu.sh or set PULSE_TANSU_BIN",
                    tansu_bin().display()
                )
            });
        self.child = Some(child);
        assert!(
            wait_for_port(self.addr, Duration::from_secs(30)).await,
            "Tansu did not listen on {}: {}",
            self.addr,
            self.logs()
        );
    }

    /// Kills the broker (SIGKILL: the harshest stop) and waits for it to exit.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.workdir.join("tansu.log")).unwrap_or_default()
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.workdir);
    }
}
