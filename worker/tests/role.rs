//! `pulse-worker [ROLE]`: an unknown role is refused at once with one line and exit code 2,
//! before any configuration or connection.

use std::time::Duration;

use pulse_testkit::{PulseEnv, PulseProcess};

#[tokio::test]
async fn an_unknown_role_is_refused_with_one_line() {
    let mut worker = PulseProcess::spawn("pulse-worker", &["notify-everyone"], &PulseEnv::empty());
    let status = worker.wait(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(2), "{}", worker.logs());
    let logs = worker.logs();
    assert!(logs.contains("unknown role \"notify-everyone\""), "{logs}");
    assert_eq!(logs.trim().lines().count(), 1, "{logs}");
}
