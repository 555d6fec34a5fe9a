//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What a raw test server does with each connection.
#[derive(Debug, Clone)]
pub enum Raw {
    /// Reads the request, then resets the connection (RST, no response).
    Reset,
    /// Sends a 200 whose `Content-Length` promises more than is sent, then closes.
    Truncated(&'static str),
    /// Sends a complete 200 with this JSON body.
    Json(&'static str),
    /// Sends a 200 of N bytes, one byte every 100 ms.
    Trickle(usize),
}

/// A loopback server that plays `script` one connection at a time (the last entry repeats) and
/// counts connections. For faults wiremock cannot produce.
pub async fn raw_server(script: Vec<Raw>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let n = c.fetch_add(1, Ordering::SeqCst);
            let step = script[n.min(script.len() - 1)].clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                match step {
                    Raw::Reset => {
                        // Linger 0 sends RST; on loopback the close never blocks.
                        #[allow(deprecated)]
                        let _ = sock.set_linger(Some(std::time::Duration::ZERO));
                        drop(sock);
                    }
                    Raw::Truncated(part) => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            part.len() + 100
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(part.as_bytes()).await;
                        let _ = sock.shutdown().await;
                    }
                    Raw::Trickle(n) => {
                        use ops_core::clock::Clock;
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {n}\r\nconnection: close\r\n\r\n"
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        for _ in 0..n {
                            ops_core::clock::SystemClock
                                .sleep(std::time::Duration::from_millis(100))
                                .await;
                            if sock.write_all(b"x").await.is_err() {
                                return;
                            }
                        }
                        let _ = sock.shutdown().await;
                    }
                    Raw::Json(body) => {
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = sock.write_all(resp.as_bytes()).await;
                        let _ = sock.shutdown().await;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), count)
}
