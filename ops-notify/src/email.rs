//! Email over SMTP (lettre): the seeds' email escalations. Updates and the resolution of an
//! incident reply to its first mail (`In-Reply-To` / `References` from the dedup key), so mail
//! clients thread them. The password is a secret: never in errors, logs or `Debug`.

use std::fmt;

use async_trait::async_trait;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use ops_core::config::Env;
use ops_core::contracts::{Notification, NotificationEvent, Notifier, Receipt};
use ops_core::{Error, ErrorKind, Result};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpSecurity {
    /// TLS from the first byte (port 465).
    Tls,
    /// STARTTLS, required (port 587).
    StartTls,
    /// No encryption: only for a relay on localhost or a test server.
    Plain,
}

/// Where and how to send.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// The server.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// TLS mode (`tls`, `start-tls` or `plain`).
    pub security: SmtpSecurity,
    /// Login, if the server needs one.
    #[serde(default)]
    pub username: Option<String>,
    /// Its password.
    #[serde(default)]
    pub password: Option<SecretString>,
}

fn default_email_name() -> String {
    "email".into()
}

/// An email channel's settings: the server, the sender and the recipients.
///
/// ```
/// use ops_notify::email::{EmailConfig, SmtpSecurity};
/// let c: EmailConfig = ops_core::config::from_toml(r#"
/// from = "ops@example.com"
/// to = ["oncall@example.com", "team@example.com"]
/// [smtp]
/// host = "smtp.example.com"
/// port = 587
/// security = "start-tls"
/// username = "ops"
/// password = "hunter2"
/// "#).unwrap();
/// assert_eq!(c.smtp.security, SmtpSecurity::StartTls);
/// assert_eq!(c.to.len(), 2);
/// assert!(!format!("{c:?}").contains("hunter2"));
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The channel's name in receipts and reports (default `email`).
    #[serde(default = "default_email_name")]
    pub name: String,
    /// The server.
    pub smtp: SmtpSettings,
    /// The sender address.
    pub from: String,
    /// The recipients (at least one).
    pub to: Vec<String>,
}

impl EmailConfig {
    /// Mail from `from` to `to` through `smtp`.
    pub fn new(name: impl Into<String>, smtp: SmtpSettings, from: &str, to: &[&str]) -> Self {
        Self {
            name: name.into(),
            smtp,
            from: from.to_string(),
            to: to.iter().map(|t| t.to_string()).collect(),
        }
    }

    /// From the environment: `SMTP_HOST`, `SMTP_PORT` (default 587), `SMTP_SECURITY` (`tls`,
    /// `start-tls` (default) or `plain`), `SMTP_USERNAME` and `SMTP_PASSWORD` (optional),
    /// `EMAIL_FROM`, and `EMAIL_TO` (comma-separated).
    pub fn from_env() -> Result<Self> {
        Self::from_vars(Env::from_env("email"))
    }

    /// [`Self::from_env`] over any variable lookup.
    pub fn from_vars(env: Env<'_>) -> Result<Self> {
        let bad = |var: &str, reason: String| Error::invalid_input("email", "config", var, reason);
        let security = match env.optional("SMTP_SECURITY").as_deref() {
            None | Some("start-tls") => SmtpSecurity::StartTls,
            Some("tls") => SmtpSecurity::Tls,
            Some("plain") => SmtpSecurity::Plain,
            Some(other) => {
                return Err(bad(
                    "SMTP_SECURITY",
                    format!("{other:?} is not tls, start-tls or plain"),
                ));
            }
        };
        let port = match env.optional("SMTP_PORT") {
            None => 587,
            Some(p) => p
                .trim()
                .parse()
                .map_err(|_| bad("SMTP_PORT", format!("{p:?} is not a port")))?,
        };
        let to = env.required("EMAIL_TO", "the recipients, comma-separated")?;
        Ok(Self {
            name: default_email_name(),
            smtp: SmtpSettings {
                host: env.required("SMTP_HOST", "the mail server's host name")?,
                port,
                security,
                username: env.optional("SMTP_USERNAME"),
                password: env.optional("SMTP_PASSWORD").map(SecretString::from),
            },
            from: env.required("EMAIL_FROM", "the sender address")?,
            to: to.split(',').map(|t| t.trim().to_string()).collect(),
        })
    }
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
    /// The channel `config` describes. Addresses that do not parse and an empty recipient
    /// list are refused here. It takes no clock: it never waits (the SMTP transport's own
    /// 30-second timeout bounds a send).
    pub fn new(config: EmailConfig) -> Result<Self> {
        let EmailConfig {
            name,
            smtp,
            from,
            to,
        } = config;
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
            from: address("from", &from)?,
            to: to.iter().map(|t| address("to", t)).collect::<Result<_>>()?,
            name,
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
