//! Apache Kafka brokers of a test's own, for tests that kill and restart brokers: a single
//! KRaft node ([`TestBroker`]) or a cluster of several on loopback ([`TestCluster`]). Each node
//! is a real `kafka.Kafka` JVM started through `scripts/kafka-node.sh` (the same file that
//! starts the development broker), with its data in a temporary directory that survives
//! [`TestCluster::stop`] / [`TestCluster::start_again`], as a production broker's disk does.
//!
//! Brokers are heavy (a JVM each, a few seconds to start on 2 cores): tests that need no fault
//! of the broker use the shared one through [`crate::TestKafka::shared`] instead.
//!
//! Environment: `PULSE_KAFKA_HOME` (an install of `scripts/install-kafka.sh`; by default the
//! script finds or installs it), `PULSE_TEST_KAFKA_HEAP` (heap per test broker, default 256m).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::net::{free_port, wait_for_port};

/// How long a node may take to listen after its JVM starts (cold JVM, busy 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// `scripts/kafka-node.sh` of this repository.
fn node_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka-node.sh")
}

/// A fresh KRaft cluster id: 16 random bytes in base64url without padding.
fn cluster_id() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

/// One node of a cluster: broker and controller in one JVM.
struct Node {
    id: u32,
    addr: SocketAddr,
    controller_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn log_path(&self) -> PathBuf {
        self.dir.join("kafka.log")
    }
}

/// A cluster of Apache Kafka nodes on loopback, each broker and controller at once.
pub struct TestCluster {
    workdir: PathBuf,
    cluster_id: String,
    voters: String,
    settings: Vec<String>,
    nodes: Vec<Node>,
}

impl TestCluster {
    /// `size` nodes, started and listening. Internal topics get a replication factor of
    /// min(size, 3) and, from two nodes on, `min.insync.replicas=2` (scripts/kafka-node.sh).
    pub async fn start(size: u32) -> Self {
        Self::start_with(size, &[]).await
    }

    /// As [`Self::start`], with extra broker settings (`key=value`) on every node.
    pub async fn start_with(size: u32, settings: &[&str]) -> Self {
        let workdir = std::env::temp_dir().join(format!("pulse-kafka-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&workdir).expect("broker workdir");
        let nodes: Vec<Node> = (1..=size)
            .map(|id| Node {
                id,
                addr: format!("127.0.0.1:{}", free_port()).parse().expect("addr"),
                controller_port: free_port(),
                dir: workdir.join(format!("node-{id}")),
                child: None,
            })
            .collect();
        let voters = nodes
            .iter()
            .map(|node| format!("{}@127.0.0.1:{}", node.id, node.controller_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Self {
            workdir,
            cluster_id: cluster_id(),
            voters,
            settings: settings.iter().map(|s| (*s).to_owned()).collect(),
            nodes,
        };
        // All JVMs at once: a node of a multi-node cluster waits for its quorum before it listens.
        for index in 0..cluster.nodes.len() {
            cluster.spawn(index);
        }
        for index in 0..cluster.nodes.len() {
            cluster.wait_listening(index).await;
        }
        cluster
    }

    /// `host:port,…` of every node, for `bootstrap.servers`.
    pub fn brokers(&self) -> String {
        self.nodes
            .iter()
            .map(|node| node.addr.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Nodes in the cluster.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    fn spawn(&mut self, index: usize) {
        let heap = std::env::var("PULSE_TEST_KAFKA_HEAP").unwrap_or_else(|_| "256m".into());
        let node = &mut self.nodes[index];
        assert!(node.child.is_none(), "node {} already running", node.id);
        std::fs::create_dir_all(&node.dir).expect("node dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.log_path())
            .expect("broker log");
        let child = Command::new("bash")
            .arg(node_script())
            .arg(&node.dir)
            .arg(node.id.to_string())
            .arg(node.addr.port().to_string())
            .arg(node.controller_port.to_string())
            .arg(&self.voters)
            .arg(&self.cluster_id)
            .args(&self.settings)
            .env("PULSE_KAFKA_HEAP", heap)
            // C1 only: a test broker starts with less CPU, which the other tests need more.
            .env("PULSE_KAFKA_JVM_OPTS", "-XX:TieredStopAtLevel=1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", node_script().display()));
        node.child = Some(child);
    }

    async fn wait_listening(&mut self, index: usize) {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            let node = &mut self.nodes[index];
            let (id, addr) = (node.id, node.addr);
            if wait_for_port(addr, Duration::from_millis(500)).await {
                return;
            }
            let exited = node.child.as_mut().and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                node.child = None;
                panic!(
                    "Kafka node {id} exited ({status}) before listening: {}",
                    self.logs(index)
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Kafka node {id} did not listen on {addr} within {START_TIMEOUT:?}: {}",
                self.logs(index)
            );
        }
    }

    /// Kills node `index` (SIGKILL: the harshest stop) and waits for it to exit.
    pub async fn stop(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            let _ = child.kill();
            let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        }
    }

    /// Starts node `index` again, on the same ports and data, and waits until it listens.
    pub async fn start_again(&mut self, index: usize) {
        self.spawn(index);
        self.wait_listening(index).await;
    }

    /// The log of node `index`.
    pub fn logs(&self, index: usize) -> String {
        std::fs::read_to_string(self.nodes[index].log_path()).unwrap_or_default()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.workdir);
    }
}

/// A single-node Apache Kafka of a test's own.
pub struct TestBroker {
    cluster: TestCluster,
}

impl TestBroker {
    /// One node on free ports, listening.
    pub async fn start() -> Self {
        Self {
            cluster: TestCluster::start(1).await,
        }
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn brokers(&self) -> String {
        self.cluster.brokers()
    }

    /// Kills the broker (SIGKILL) and waits for it to exit. Its data stays.
    pub async fn stop(&mut self) {
        self.cluster.stop(0).await;
    }

    /// Starts the broker again, on the same port and data.
    pub async fn start_again(&mut self) {
        self.cluster.start_again(0).await;
    }

    pub fn logs(&self) -> String {
        self.cluster.logs(0)
    }
}
