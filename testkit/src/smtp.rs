//! A real SMTP server for a test: `scripts/smtp-capture.py` (Debian's python3-aiosmtpd) on a
//! port of its own, keeping each accepted message as a JSON file in a directory of its own.
//! [`SmtpCapture::down`] and [`SmtpCapture::up`] stop and restart it on the same port (an SMTP
//! server down for a while), and [`SmtpCapture::messages`] reads what it accepted.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

use crate::net::{free_port, wait_for_port};

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The envelope's recipients (`RCPT TO`).
    pub recipients: Vec<String>,
    pub subject: String,
    /// The `Message-ID` header, with its angle brackets.
    pub message_id: String,
    pub from: String,
    pub text: String,
    pub html: String,
    /// Every header, in order.
    pub headers: Vec<(String, String)>,
}

impl Captured {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// The running server; stopped on drop.
pub struct SmtpCapture {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl SmtpCapture {
    /// Starts a server on a free port with a fresh directory.
    pub async fn start() -> Self {
        Self::start_failing_first(0).await
    }

    /// Starts a server that answers the first `failures` messages with a temporary failure
    /// (451), then accepts.
    pub async fn start_failing_first(failures: u32) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("pulse-smtp-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("creating the mail directory");
        let mut capture = Self { port, dir, child: None };
        capture.spawn(failures).await;
        capture
    }

    async fn spawn(&mut self, failures: u32) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/smtp-capture.py");
        let child = Command::new("/usr/bin/python3")
            .arg(script)
            .args(["--port", &self.port.to_string()])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--fail-first", &failures.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("starting scripts/smtp-capture.py (needs python3-aiosmtpd)");
        self.child = Some(child);
        let addr = ([127, 0, 0, 1], self.port).into();
        assert!(
            wait_for_port(addr, Duration::from_secs(20)).await,
            "the SMTP capture server did not start on port {}",
            self.port
        );
    }

    /// `smtp://127.0.0.1:PORT`, for `PULSE_SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stops the server (connections are refused until [`Self::up`]).
    pub async fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
    }

    /// Starts it again on the same port, keeping what it captured.
    pub async fn up(&mut self) {
        if self.child.is_none() {
            self.spawn(0).await;
        }
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<Captured> {
        let mut names: Vec<_> = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                    .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .filter_map(|text| serde_json::from_str::<Value>(&text).ok())
            .map(|record| Captured {
                recipients: record["rcpt_tos"]
                    .as_array()
                    .map(|list| list.iter().filter_map(|r| r.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default(),
                subject: record["subject"].as_str().unwrap_or_default().to_owned(),
                message_id: record["message_id"].as_str().unwrap_or_default().to_owned(),
                from: record["from"].as_str().unwrap_or_default().to_owned(),
                text: record["text"].as_str().unwrap_or_default().to_owned(),
                html: record["html"].as_str().unwrap_or_default().to_owned(),
                headers: record["headers"]
                    .as_array()
                    .map(|list| {
                        list.iter()
                            .filter_map(|pair| Some((pair[0].as_str()?.to_owned(), pair[1].as_str()?.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Waits until at least `count` messages arrived (or `timeout` passed) and returns them all.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Captured> {
        crate::eventually(timeout, || async {
            let messages = self.messages();
            (messages.len() >= count).then_some(messages)
        })
        .await
        .unwrap_or_else(|| self.messages())
    }
}

impl Drop for SmtpCapture {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
