//! A TCP forwarder the tests can switch off and on, to cut an instance off
//! its database and give it back.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct TogglingProxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Drop for TogglingProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut_connections();
    }
}

impl TogglingProxy {
    /// Forwards 127.0.0.1:<port> to `target` while up.
    pub async fn start(target: SocketAddr) -> TogglingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("local_addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (up, connections) = (up.clone(), connections.clone());
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        continue; // dropped: the connection is refused
                    }
                    let forward = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    connections.lock().expect("lock").push(forward);
                }
            })
        };
        TogglingProxy {
            port,
            up,
            connections,
            accept,
        }
    }

    /// Refuses new connections and cuts the open ones.
    pub fn go_down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut_connections();
    }

    pub fn come_back(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    fn cut_connections(&self) {
        for connection in self.connections.lock().expect("lock").drain(..) {
            connection.abort();
        }
    }
}
