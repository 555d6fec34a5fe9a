//! A real `redis-server` (Debian's package `redis-server`, or `REDIS_SERVER_BIN`) started on a
//! free loopback port for one test and killed with it. A missing binary fails the test with how
//! to install it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ops_core::adapters::redis_probe::resp::{self, Limits, Parsed, Reply};
use ops_core::clock::{Clock, SystemClock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A running server.
pub struct RedisServer {
    child: Child,
    /// `127.0.0.1:port`.
    pub address: String,
    password: String,
}

fn binary() -> String {
    if let Ok(bin) = std::env::var("REDIS_SERVER_BIN") {
        return bin;
    }
    for candidate in [
        "redis-server",
        "/usr/bin/redis-server",
        "/usr/local/bin/redis-server",
    ] {
        if Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return candidate.to_string();
        }
    }
    panic!(
        "redis-server is not installed: `apt-get install redis-server` (.ci/run does) or set \
         REDIS_SERVER_BIN to the binary"
    );
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    l.local_addr().expect("its address").port()
}

impl RedisServer {
    /// Starts a server requiring `password`, with `maxmemory` set, and waits until it answers.
    pub async fn start(password: &str, maxmemory: &str) -> RedisServer {
        let bin = binary();
        // A port taken between choosing and binding makes the server exit: choose again.
        for _ in 0..5 {
            let port = free_port();
            // Started by a shell that waits on its stdin: when this process ends however it
            // ends, the kernel closes the pipe and the shell kills the server, and exits only
            // once it is gone (so a test that kills it finds the port closed).
            let script =
                r#"bin=$1; shift; "$bin" "$@" & pid=$!; cat >/dev/null; kill -9 $pid; wait $pid"#;
            let mut child = Command::new("sh")
                .args(["-c", script, "redis"])
                .arg(&bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(["--requirepass", password, "--maxmemory", maxmemory])
                .args(["--dir", &std::env::temp_dir().display().to_string()])
                .args(["--loglevel", "warning"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
            let address = format!("127.0.0.1:{port}");
            if wait_ready(&mut child, &address).await {
                return RedisServer {
                    child,
                    address,
                    password: password.to_string(),
                };
            }
            drop(child.stdin.take());
            let _ = child.wait();
        }
        panic!("redis-server exited before it was ready on any of 5 ports");
    }

    /// Runs one command as the default user (authenticated with the server's password).
    pub async fn admin(&self, args: &[&str]) -> Reply {
        let mut conn = TcpStream::connect(&self.address).await.expect("connect");
        call(&mut conn, &["AUTH", &self.password]).await;
        call(&mut conn, args).await
    }

    /// Changes the password the server requires (what a rotation does to the server).
    pub async fn set_password(&mut self, password: &str) {
        let r = self
            .admin(&["CONFIG", "SET", "requirepass", password])
            .await;
        assert_eq!(r, Reply::Simple("OK".into()));
        self.password = password.to_string();
    }

    /// Kills the server.
    pub fn kill(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends one command and reads its reply.
pub async fn call(conn: &mut TcpStream, args: &[&str]) -> Reply {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    conn.write_all(&resp::encode_command(&args))
        .await
        .expect("send");
    let mut buf = Vec::new();
    loop {
        if let Parsed::Complete(r, _) = resp::parse(&buf, &Limits::default()).expect("a reply") {
            return r;
        }
        let mut chunk = [0u8; 4096];
        let n = conn.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn wait_ready(child: &mut Child, address: &str) -> bool {
    let ready = async {
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if let Ok(mut conn) = TcpStream::connect(address).await {
                // NOAUTH or PONG: either way the server is answering.
                if let Reply::Error(_) | Reply::Simple(_) = call(&mut conn, &["PING"]).await {
                    return true;
                }
            }
            // Readiness is polled: the next look in 20 ms.
            SystemClock.sleep(Duration::from_millis(20)).await;
        }
    };
    match tokio::time::timeout(Duration::from_secs(30), ready).await {
        Ok(ok) => ok,
        Err(_) => panic!("redis-server did not answer within 30 s"),
    }
}
