//! [`RedisTestServer`]: a real `redis-server` on a free loopback port with a password, for
//! tests and rehearsals (feature `redis-test-server`), killed when dropped — also when the
//! process that started it dies, since it runs under a shell that waits on the parent's pipe.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::resp::{self, Limits, Parsed, Reply};
use crate::clock::{Clock, SystemClock};
use crate::{Error, ErrorKind, Result};

const PROVIDER: &str = "redis-test-server";

/// A running server.
pub struct RedisTestServer {
    child: Child,
    address: String,
    password: String,
}

impl std::fmt::Debug for RedisTestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTestServer")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// The server binary: `REDIS_SERVER_BIN`, or `redis-server` on the `PATH` or in the usual
/// places. `NotFound` saying how to install it otherwise.
pub fn binary() -> Result<String> {
    if let Ok(bin) = std::env::var("REDIS_SERVER_BIN") {
        return Ok(bin);
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
            return Ok(candidate.to_string());
        }
    }
    Err(Error::new(
        PROVIDER,
        "start",
        ErrorKind::NotFound {
            resource: "redis-server: `apt-get install redis-server` (.ci/run does) or set \
                       REDIS_SERVER_BIN to the binary"
                .into(),
        },
    ))
}

fn free_port() -> Result<u16> {
    let l =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io(PROVIDER, "start", &e))?;
    Ok(l.local_addr()
        .map_err(|e| Error::io(PROVIDER, "start", &e))?
        .port())
}

impl RedisTestServer {
    /// Starts a server requiring `password`, with `maxmemory` (`64mb`), no persistence, and
    /// waits until it answers (at most 30 s).
    pub async fn start(password: &str, maxmemory: &str) -> Result<Self> {
        let bin = binary()?;
        // A port taken between choosing and binding makes the server exit: choose again.
        for _ in 0..5 {
            let port = free_port()?;
            // The shell waits on its stdin: when the parent ends however it ends, the kernel
            // closes the pipe and the shell kills the server, and exits only once it is gone.
            let script = r#"bin=$1; shift; "$bin" "$@" & pid=$!; cat >/dev/null; kill -9 $pid; wait $pid 2>/dev/null; exit 0"#;
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
                .map_err(|e| Error::io(PROVIDER, "start", &e))?;
            let address = format!("127.0.0.1:{port}");
            if wait_ready(&mut child, &address).await? {
                return Ok(Self {
                    child,
                    address,
                    password: password.to_string(),
                });
            }
            drop(child.stdin.take());
            let _ = child.wait();
        }
        Err(Error::new(
            PROVIDER,
            "start",
            ErrorKind::Unavailable { retry_after: None },
        ))
    }

    /// `127.0.0.1:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Runs one command as the default user (authenticated with the server's password).
    pub async fn admin(&self, args: &[&str]) -> Result<Reply> {
        let mut conn = TcpStream::connect(&self.address)
            .await
            .map_err(|e| Error::io(PROVIDER, "admin", &e))?;
        let password = self.password.clone();
        call(&mut conn, &["AUTH", &password]).await?;
        call(&mut conn, args).await
    }

    /// Changes the password the server requires (what a rotation does to the server).
    pub async fn set_password(&mut self, password: &str) -> Result<()> {
        self.admin(&["CONFIG", "SET", "requirepass", password])
            .await?;
        self.password = password.to_string();
        Ok(())
    }

    /// Kills the server and waits until it is gone.
    pub fn kill(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for RedisTestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends one command and reads its reply.
pub async fn call(conn: &mut TcpStream, args: &[&str]) -> Result<Reply> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    conn.write_all(&resp::encode_command(&args))
        .await
        .map_err(|e| Error::io(PROVIDER, "call", &e))?;
    let mut buf = Vec::new();
    loop {
        let parsed = resp::parse(&buf, &Limits::default())
            .map_err(|detail| Error::new(PROVIDER, "call", ErrorKind::Decode { detail }))?;
        if let Parsed::Complete(r, _) = parsed {
            return Ok(r);
        }
        let mut chunk = [0u8; 4096];
        let n = conn
            .read(&mut chunk)
            .await
            .map_err(|e| Error::io(PROVIDER, "call", &e))?;
        if n == 0 {
            return Err(Error::new(
                PROVIDER,
                "call",
                ErrorKind::Unavailable { retry_after: None },
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn wait_ready(child: &mut Child, address: &str) -> Result<bool> {
    let clock = SystemClock;
    let deadline = clock.instant() + Duration::from_secs(30);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return Ok(false);
        }
        if let Ok(mut conn) = TcpStream::connect(address).await
            // NOAUTH or PONG: either way the server is answering.
            && let Ok(Reply::Error(_) | Reply::Simple(_)) = call(&mut conn, &["PING"]).await
        {
            return Ok(true);
        }
        if clock.instant() > deadline {
            return Err(Error::new(
                PROVIDER,
                "start",
                ErrorKind::Timeout {
                    after: Duration::from_secs(30),
                },
            ));
        }
        // Readiness is polled: the next look in 20 ms.
        clock.sleep(Duration::from_millis(20)).await;
    }
}
