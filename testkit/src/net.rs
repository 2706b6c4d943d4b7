//! Local ports for test servers.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("no free local port")
}

/// Waits until something accepts TCP connections on `addr`.
pub async fn wait_for_port(addr: SocketAddr, timeout: Duration) -> bool {
    crate::eventually(timeout, || async move {
        tokio::net::TcpStream::connect(addr).await.ok().map(|_| ())
    })
    .await
    .is_some()
}
