//! A TCP proxy a test puts between a Pulse process and PostgreSQL (or any server) to cut the
//! network and restore it, without stopping the shared server other tests use. It runs on a
//! thread of its own so a test that blocks does not stall it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct TcpProxy {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    stop: watch::Sender<bool>,
}

impl TcpProxy {
    /// Starts forwarding a new local port to `target`.
    pub fn start(target: SocketAddr) -> Self {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("proxy addr");
        let open = Arc::new(AtomicBool::new(true));
        let (generation, generation_rx) = watch::channel(0u64);
        let (stop, stop_rx) = watch::channel(false);
        let accept_open = open.clone();
        std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(std_listener) else {
                    return;
                };
                let mut stop_rx = stop_rx;
                loop {
                    tokio::select! {
                        _ = stop_rx.changed() => return,
                        accepted = listener.accept() => {
                            let Ok((client, _)) = accepted else { continue };
                            if !accept_open.load(Ordering::SeqCst) {
                                drop(client);
                                continue;
                            }
                            let mut cut = generation_rx.clone();
                            cut.mark_unchanged();
                            tokio::spawn(async move {
                                let Ok(server) = TcpStream::connect(target).await else { return };
                                let (mut client, mut server) = (client, server);
                                tokio::select! {
                                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                    _ = cut.changed() => {}
                                }
                            });
                        }
                    }
                }
            });
        });
        Self {
            addr,
            open,
            generation,
            stop,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every proxied connection and refuses new ones until [`Self::restore`].
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Accepts and forwards connections again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// `url` (a postgres:// URL) rewritten to go through this proxy.
    pub fn postgres_url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("url with scheme");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let userinfo = authority
            .rsplit_once('@')
            .map(|(user, _)| format!("{user}@"))
            .unwrap_or_default();
        format!("{scheme}://{userinfo}{}/{path}", self.addr)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        let _ = self.stop.send(true);
    }
}
