//! Email over SMTP (lettre): the seeds' email escalations. Updates and the resolution of an
//! incident reply to its first mail (`In-Reply-To` / `References` from the dedup key), so mail
//! clients thread them. The password is a secret: never in errors, logs or `Debug`.

use std::fmt;

use async_trait::async_trait;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use ops_core::contracts::{Notification, NotificationEvent, Notifier, Receipt};
use ops_core::{Error, ErrorKind, Result};
use secrecy::{ExposeSecret, SecretString};

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// TLS from the first byte (port 465).
    Tls,
    /// STARTTLS, required (port 587).
    StartTls,
    /// No encryption: only for a relay on localhost or a test server.
    Plain,
}

/// Where and how to send.
#[derive(Clone)]
pub struct SmtpSettings {
    /// The server.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// TLS mode.
    pub security: SmtpSecurity,
    /// Login, if the server needs one.
    pub username: Option<String>,
    /// Its password.
    pub password: Option<SecretString>,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Sends notifications as plain-text mail to fixed recipients.
#[derive(Clone)]
pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    name: String,
}

impl fmt::Debug for EmailNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailNotifier")
            .field("name", &self.name)
            .field("to", &self.to.len())
            .finish_non_exhaustive()
    }
}

fn address(field: &str, s: &str) -> Result<Mailbox> {
    s.parse().map_err(|_| {
        Error::invalid_input(
            "email",
            "config",
            field,
            format!("{s:?} is not an email address"),
        )
    })
}

impl EmailNotifier {
    /// Mail from `from` to `to` through `smtp`.
    pub fn new(
        name: impl Into<String>,
        smtp: SmtpSettings,
        from: &str,
        to: &[&str],
    ) -> Result<Self> {
        if to.is_empty() {
            return Err(Error::invalid_input(
                "email",
                "config",
                "to",
                "name at least one recipient",
            ));
        }
        let builder = match smtp.security {
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host),
            SmtpSecurity::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            }
            SmtpSecurity::Plain => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &smtp.host,
            )),
        }
        .map_err(|e| Error::invalid_input("email", "config", "host", e.to_string()))?;
        let mut builder = builder
            .port(smtp.port)
            .timeout(Some(std::time::Duration::from_secs(30)));
        if let (Some(u), Some(p)) = (smtp.username, smtp.password) {
            builder = builder.credentials(Credentials::new(u, p.expose_secret().to_string()));
        }
        Ok(Self {
            transport: builder.build(),
            from: address("from", from)?,
            to: to.iter().map(|t| address("to", t)).collect::<Result<_>>()?,
            name: name.into(),
        })
    }

    /// The mail for `n`.
    pub fn message(&self, n: &Notification) -> Result<Message> {
        let (_, word) = crate::slack::blocks::badge(n.severity);
        let subject = match n.event {
            NotificationEvent::Trigger => format!("[{word}] {}", n.title),
            NotificationEvent::Resolve => format!("Re: [RESOLVED] {}", n.title),
            _ => format!("Re: [{word}] {}", n.title),
        };
        let mut text = String::new();
        if !n.body_markdown.is_empty() {
            text.push_str(&n.body_markdown);
            text.push_str("\n\n");
        }
        for (k, v) in &n.fields {
            text.push_str(&format!("{k}: {v}\n"));
        }
        for l in &n.links {
            text.push_str(&format!("{}: {}\n", l.label, l.url));
        }
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for t in &self.to {
            b = b.to(t.clone());
        }
        if let Some(key) = &n.dedup_key {
            // The first mail of an incident has an id the later ones refer to.
            let id = format!(
                "<{}@ops.incident>",
                key.replace(
                    |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '.',
                    "-"
                )
            );
            b = if n.event == NotificationEvent::Trigger {
                b.message_id(Some(id))
            } else {
                b.in_reply_to(id.clone()).references(id)
            };
        }
        b.body(text)
            .map_err(|e| Error::invalid_input("email", "message", "body", e.to_string()))
    }
}

fn smtp_error(e: &lettre::transport::smtp::Error) -> Error {
    let code = e.status().map(|c| c.to_string());
    let kind = match code.as_deref() {
        Some("535") | Some("534") | Some("530") => ErrorKind::Unauthorized,
        Some(c) if c.starts_with('5') => ErrorKind::Provider {
            status: 0,
            code: Some(format!("smtp {c}")),
            body_excerpt: ops_core::redact::redact_text(&e.to_string()),
        },
        Some(_) => ErrorKind::Unavailable { retry_after: None },
        None if e.is_timeout() => ErrorKind::Timeout {
            after: std::time::Duration::from_secs(30),
        },
        None => ErrorKind::Unavailable { retry_after: None },
    };
    Error::new("email", "send", kind)
}

#[async_trait]
impl Notifier for EmailNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, n: &Notification) -> Result<Receipt> {
        n.validate()?;
        let message = self.message(n)?;
        let response = self
            .transport
            .send(message)
            .await
            .map_err(|e| smtp_error(&e))?;
        let id = response.message().next().map(str::to_owned);
        Ok(Receipt {
            notifier: self.name.clone(),
            id,
            dedup_key: n.dedup_key.clone(),
        })
    }
}
