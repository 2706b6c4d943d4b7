//! Signal handling owned by Pulse: the first SIGTERM or SIGINT cancels the returned token; each
//! binary then stops taking work, drains and exits (see each `main` for its order of steps).

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Returns a token cancelled on the first SIGTERM or SIGINT. Must run inside a tokio runtime.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            tracing::error!("Cannot install signal handlers");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "Shutting down"),
            _ = int.recv() => tracing::info!(signal = "SIGINT", "Shutting down"),
        }
        cancel.cancel();
    });
    token
}
