//! A minimal SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) that
//! stores the mail it accepts, and can refuse the next ones.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A mail the server accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct SimMail {
    /// `MAIL FROM`.
    pub from: String,
    /// `RCPT TO`s.
    pub to: Vec<String>,
    /// The message as sent (headers and body).
    pub data: String,
}

#[derive(Debug, Default)]
struct State {
    mails: Vec<SimMail>,
    refuse: Vec<String>,
}

/// A running SMTP server on loopback (plain, no authentication).
#[derive(Debug)]
pub struct SmtpSim {
    port: u16,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSim {
    /// Starts the server.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = session(sock, state).await;
                });
            }
        });
        Ok(Self { port, state, task })
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The mail accepted so far.
    pub fn mails(&self) -> Vec<SimMail> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .mails
            .clone()
    }

    /// The next message is refused at end of data with `reply` (e.g. `451 4.3.0 try later`).
    pub fn refuse_next(&self, reply: &str) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refuse
            .push(reply.to_string());
    }
}

async fn session(sock: tokio::net::TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = sock.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sim.local ESMTP ready\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            "250-sim.local\r\n250-8BITMIME\r\n250 SMTPUTF8".into()
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            "250 OK".into()
        } else if upper.starts_with("MAIL FROM:") {
            from = line[10..]
                .trim()
                .trim_matches(|c| c == '<' || c == '>')
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string();
            to.clear();
            "250 2.1.0 OK".into()
        } else if upper.starts_with("RCPT TO:") {
            to.push(
                line[8..]
                    .trim()
                    .trim_matches(|c| c == '<' || c == '>')
                    .to_string(),
            );
            "250 2.1.5 OK".into()
        } else if upper.starts_with("DATA") {
            write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = String::new();
            while let Some(l) = lines.next_line().await? {
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                data.push_str("\r\n");
            }
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            if st.refuse.is_empty() {
                st.mails.push(SimMail {
                    from: from.clone(),
                    to: to.clone(),
                    data,
                });
                "250 2.0.0 OK queued as SIM1".into()
            } else {
                st.refuse.remove(0)
            }
        } else if upper.starts_with("RSET") {
            from.clear();
            to.clear();
            "250 OK".into()
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.2 Command not recognized".into()
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
    Ok(())
}
