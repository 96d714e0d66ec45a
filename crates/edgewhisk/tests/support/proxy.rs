//! The HTTP load balancer in front of a cluster's controllers, as an operator would put one
//! there: a TCP proxy on a loopback port that hands each new connection to the next controller
//! in turn, and skips a controller that refuses connections (one that was killed). Clients
//! keep connections alive, so the proxy only balances connections, not requests; tests that
//! need both controllers to see requests open new connections.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running proxy; stops accepting when dropped (open connections run to their end).
#[derive(Debug)]
pub(crate) struct Proxy {
    addr: SocketAddr,
    upstreams: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards to `upstreams` round robin.
    pub(crate) fn start(upstreams: Vec<SocketAddr>) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let upstreams = Arc::new(Mutex::new(upstreams));
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        {
            let upstreams = upstreams.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    let list = upstreams.lock().expect("the upstream list").clone();
                    let first = next.fetch_add(1, Ordering::Relaxed);
                    let upstream = (0..list.len()).find_map(|i| {
                        let to = list[(first + i) % list.len()];
                        TcpStream::connect_timeout(&to, Duration::from_secs(1)).ok()
                    });
                    match upstream {
                        Some(upstream) => splice(client, upstream),
                        None => drop(client),
                    }
                }
            });
        }
        Proxy {
            addr,
            upstreams,
            stop,
        }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the controllers connections go to (a restarted controller has a new port).
    pub(crate) fn set_upstreams(&self, upstreams: Vec<SocketAddr>) {
        *self.upstreams.lock().expect("the upstream list") = upstreams;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copies bytes both ways until either side closes.
fn splice(client: TcpStream, upstream: TcpStream) {
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let pairs = [
        (client.try_clone(), upstream.try_clone()),
        (upstream.try_clone(), client.try_clone()),
    ];
    for pair in pairs {
        let (Ok(mut from), Ok(mut to)) = pair else {
            return;
        };
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = to.shutdown(Shutdown::Write);
            let _ = from.shutdown(Shutdown::Read);
        });
    }
}
