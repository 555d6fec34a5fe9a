//! Connecting: a URL kept secret, TLS with rustls, a small pool.

use std::fmt;
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use ops_core::{Error, Result};
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::config::SslMode;

use crate::error::pg_error;
use crate::tls::{TlsSettings, connector, split_tls_params};

/// How to reach a database. `Debug` never shows the password.
#[derive(Clone)]
pub struct PgConfig {
    url: SecretString,
    parsed: tokio_postgres::Config,
    tls: TlsSettings,
    /// Connections in the pool.
    pub pool_size: usize,
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("hosts", &self.parsed.get_hosts().len())
            .field("dbname", &self.parsed.get_dbname())
            .field("user", &self.parsed.get_user())
            .field("ssl_mode", &self.parsed.get_ssl_mode())
            .field("tls", &self.tls)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl PgConfig {
    /// From a URL (`postgres://user:password@host:5432/db?sslmode=require`) or key-value string.
    /// `sslmode=verify-full` / `verify-ca` and `sslrootcert=FILE` are understood as libpq does
    /// (see [`crate::tls`]).
    pub fn new(url: impl Into<String>) -> Result<Self> {
        let url = url.into();
        let (rewritten, tls) = split_tls_params(&url)?;
        let parsed: tokio_postgres::Config = rewritten.parse().map_err(|_| {
            Error::invalid_input(
                "postgres",
                "config",
                "url",
                "not a PostgreSQL connection string",
            )
        })?;
        Ok(Self {
            url: SecretString::from(url),
            parsed,
            tls,
            pool_size: 4,
        })
    }

    /// `DATABASE_URL` from the environment.
    pub fn from_env() -> Result<Self> {
        let url = std::env::var("DATABASE_URL").map_err(|_| {
            Error::invalid_input(
                "postgres",
                "config",
                "DATABASE_URL",
                "is not set: postgres://user:password@host:5432/db",
            )
        })?;
        Self::new(url)
    }

    /// The parsed settings.
    pub fn settings(&self) -> &tokio_postgres::Config {
        &self.parsed
    }

    /// The TLS settings (`verify-full`, `verify-ca`, `sslrootcert`).
    pub fn tls(&self) -> &TlsSettings {
        &self.tls
    }

    /// The same server, another database.
    pub fn with_dbname(&self, dbname: &str) -> Self {
        let mut c = self.clone();
        c.parsed.dbname(dbname);
        c
    }

    /// The connection string, for tools (`pg_dump -d`). A secret: never log it.
    pub fn expose_url(&self) -> &str {
        self.url.expose_secret()
    }
}

/// Where `config` points: `host:port` (or the socket directory), for messages.
fn endpoint(config: &PgConfig) -> String {
    use tokio_postgres::config::Host;
    let s = config.settings();
    let port = s.get_ports().first().copied().unwrap_or(5432);
    match s.get_hosts().first() {
        Some(Host::Tcp(h)) => format!("{h}:{port}"),
        Some(Host::Unix(p)) => format!("{}/.s.PGSQL.{port}", p.display()),
        None => format!("localhost:{port}"),
    }
}

/// A failed connection, naming where it went and why (refused, unknown host, timed out, TLS),
/// never the password. Answers from the server (a wrong password, a missing database) keep
/// their typed kinds.
fn connect_error(config: &PgConfig, e: &tokio_postgres::Error) -> Error {
    if e.as_db_error().is_some() {
        return pg_error("connect", e);
    }
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    let cause = ops_core::redact::redact_text(&cause);
    let kind = if cause.contains("timed out") {
        ops_core::ErrorKind::Timeout {
            after: std::time::Duration::ZERO,
        }
    } else {
        ops_core::ErrorKind::Unavailable { retry_after: None }
    };
    Error::new(
        "postgres",
        format!("connect to {}: {cause}", endpoint(config)),
        kind,
    )
}

/// A pool of connections to one database.
#[derive(Clone)]
pub struct Postgres {
    pool: Pool,
    config: Arc<PgConfig>,
}

impl fmt::Debug for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Postgres")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Postgres {
    /// A pool for `config` (no connection is made until first use).
    pub fn new(config: PgConfig) -> Result<Self> {
        let manager = Manager::from_config(
            config.parsed.clone(),
            connector(&config.tls)?,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .build()
            .map_err(|e| Error::invalid_input("postgres", "pool", "config", e.to_string()))?;
        Ok(Self {
            pool,
            config: Arc::new(config),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PgConfig {
        &self.config
    }

    /// A pooled connection.
    pub async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => connect_error(&self.config, &e),
            other => Error::new(
                "postgres",
                "connect",
                ops_core::ErrorKind::Unavailable { retry_after: None },
            )
            .with_operation(format!("connect: {other}")),
        })
    }

    /// A connection of its own, outside the pool (session state such as advisory locks).
    pub async fn dedicated(&self) -> Result<tokio_postgres::Client> {
        Ok(self.dedicated_watched(None).await?.0)
    }

    /// A connection of its own, and a receiver that gets why the connection ended the moment
    /// it does (the server terminated the session, restarted, the network broke). With
    /// `keepalive`, TCP keepalives probe an idle connection that often.
    pub async fn dedicated_watched(
        &self,
        keepalive: Option<std::time::Duration>,
    ) -> Result<(
        tokio_postgres::Client,
        tokio::sync::oneshot::Receiver<String>,
    )> {
        let mut config = self.config.parsed.clone();
        if let Some(k) = keepalive {
            config.keepalives(true).keepalives_idle(k);
        }
        let (ended_tx, ended) = tokio::sync::oneshot::channel();
        let finish = |result: std::result::Result<(), tokio_postgres::Error>| {
            let why = match result {
                Ok(()) => "the connection was closed".to_string(),
                Err(e) => ops_core::redact::redact_text(&e.to_string()),
            };
            tracing::debug!(why, "a dedicated PostgreSQL connection ended");
            let _ = ended_tx.send(why);
        };
        let client = if config.get_ssl_mode() == SslMode::Disable {
            let (c, conn) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| connect_error(&self.config, &e))?;
            tokio::spawn(async move { finish(conn.await) });
            c
        } else {
            let (c, conn) = config
                .connect(connector(&self.config.tls)?)
                .await
                .map_err(|e| connect_error(&self.config, &e))?;
            tokio::spawn(async move { finish(conn.await) });
            c
        };
        Ok((client, ended))
    }
}
