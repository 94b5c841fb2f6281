//! A TCP proxy that can be cut: the way these tests make MySQL or RabbitMQ
//! unreachable for one gateway without touching the shared servers.
//!
//! While cut, every open connection is closed and new ones are accepted
//! and dropped at once, as a dead server's port would answer. Restoring
//! lets new connections through again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Shared {
    cut: AtomicBool,
    /// Cancelled when the proxy is cut; replaced when it is restored.
    live: Mutex<CancellationToken>,
    open: AtomicUsize,
    most_open: AtomicUsize,
}

pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let stop = CancellationToken::new();
        let target = target.to_string();
        tokio::spawn({
            let shared = Arc::clone(&shared);
            let stop = stop.clone();
            async move {
                loop {
                    let accepted = tokio::select! {
                        a = listener.accept() => a,
                        _ = stop.cancelled() => return,
                    };
                    let Ok((client, _)) = accepted else { continue };
                    if shared.cut.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let cut = shared.live.lock().unwrap().clone();
                    tokio::spawn(pump(client, target.clone(), Arc::clone(&shared), cut));
                }
            }
        });
        Proxy { addr, shared, stop }
    }

    /// `url` with its `127.0.0.1:port` replaced by this proxy.
    pub fn rewrite(&self, url: &str, port: u16) -> String {
        url.replace(&format!("127.0.0.1:{port}"), &self.addr.to_string())
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        self.shared.live.lock().unwrap().cancel();
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        *self.shared.live.lock().unwrap() = CancellationToken::new();
        self.shared.cut.store(false, Ordering::SeqCst);
    }

    /// The most connections that were open through the proxy at once since
    /// the last [`Proxy::reset_most_open`].
    pub fn most_open(&self) -> usize {
        self.shared.most_open.load(Ordering::SeqCst)
    }

    pub fn reset_most_open(&self) {
        let now = self.shared.open.load(Ordering::SeqCst);
        self.shared.most_open.store(now, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.shared.live.lock().unwrap().cancel();
    }
}

async fn pump(mut client: TcpStream, target: String, shared: Arc<Shared>, cut: CancellationToken) {
    let Ok(mut server) = TcpStream::connect(&target).await else {
        return;
    };
    let open = shared.open.fetch_add(1, Ordering::SeqCst) + 1;
    shared.most_open.fetch_max(open, Ordering::SeqCst);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.cancelled() => {}
    }
    shared.open.fetch_sub(1, Ordering::SeqCst);
}
