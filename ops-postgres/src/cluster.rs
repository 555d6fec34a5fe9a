//! [`TestCluster`]: a throwaway PostgreSQL cluster for tests and rehearsals — `initdb` into a
//! temporary directory, a free port on 127.0.0.1, trust authentication for the `ops` user,
//! stopped and removed on drop. `OPS_TEST_DATABASE_URL` points the tests at an existing server
//! instead. When neither is possible, [`TestCluster::start`] fails and says how to get one:
//! tests never skip.
//!
//! As root (CI containers), `initdb` refuses to run, so the server runs as the `postgres` user
//! (`runuser`), which must exist.

use std::path::{Path, PathBuf};
use std::process::Command;

use ops_core::{Error, ErrorKind, Result};

use crate::connect::{PgConfig, Postgres};
use crate::dump::{find_bin_dir, path_dirs};

/// How to get a server, for the error when there is none.
pub const HOW_TO_GET_ONE: &str = "no PostgreSQL server for the tests: install the server binaries (Debian: \
    `apt-get install postgresql-15`; initdb and pg_ctl on PATH, in /usr/local/bin or \
    /usr/lib/postgresql/*/bin) or set OPS_TEST_DATABASE_URL=postgres://user:password@host/db";

/// A running throwaway cluster (or an external server from `OPS_TEST_DATABASE_URL`).
#[derive(Debug)]
pub struct TestCluster {
    url: String,
    bin: Option<PathBuf>,
    data: Option<tempfile::TempDir>,
    as_postgres: bool,
    /// The watchdog's stdin: when this process ends, however it ends (`std::process::exit`,
    /// SIGTERM, `kill -9`), the kernel closes it and the watchdog stops the server.
    watchdog: Option<(std::process::Child, std::process::ChildStdin)>,
}

fn fail(detail: impl Into<String>) -> Error {
    Error::new(
        "postgres",
        "test_cluster",
        ErrorKind::Unavailable { retry_after: None },
    )
    .with_operation(format!("test_cluster: {}", detail.into()))
}

/// The directory holding `initdb` and `pg_ctl`.
pub fn server_bin_dir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(d) = std::env::var("OPS_PG_BIN") {
        candidates.push(d.into());
    }
    candidates.extend(path_dirs());
    candidates.push("/usr/local/bin".into());
    find_bin_dir(candidates, &["initdb", "pg_ctl"])
}

/// The directory holding the client tools (`pg_dump`, `pg_restore`).
pub fn client_bin_dir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = server_bin_dir().into_iter().collect();
    candidates.extend(path_dirs());
    find_bin_dir(candidates, &["pg_dump", "pg_restore"])
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().map_err(|e| fail(format!("{cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(fail(format!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|u| u == "0")
}

impl TestCluster {
    /// Starts a cluster (or connects to `OPS_TEST_DATABASE_URL`).
    pub fn start() -> Result<Self> {
        if let Ok(url) = std::env::var("OPS_TEST_DATABASE_URL") {
            return Ok(Self {
                url,
                bin: None,
                data: None,
                as_postgres: false,
                watchdog: None,
            });
        }
        let bin = server_bin_dir().ok_or_else(|| {
            Error::new(
                "postgres",
                "test_cluster",
                ErrorKind::Unsupported {
                    capability: HOW_TO_GET_ONE.into(),
                },
            )
        })?;
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("ops-pg-")
            .tempdir()
            .map_err(|e| fail(e.to_string()))?;
        if as_postgres {
            let uid: u32 = output(Command::new("id").args(["-u", "postgres"]))
                .map_err(|_| fail("running as root needs a `postgres` user to run the server: useradd --system postgres"))?
                .parse()
                .map_err(|_| fail("cannot read the postgres user's id"))?;
            let gid: u32 = output(Command::new("id").args(["-g", "postgres"]))?
                .parse()
                .map_err(|_| fail("cannot read the postgres group"))?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| fail(format!("chown: {e}")))?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| fail(e.to_string()))?
            .port();
        let data = dir.path().join("data");
        let mut cluster = Self {
            url: format!("postgres://ops@127.0.0.1:{port}/postgres?sslmode=disable"),
            bin: Some(bin.clone()),
            data: Some(dir),
            as_postgres,
            watchdog: None,
        };
        let d = data.display().to_string();
        cluster.run(
            "initdb",
            &[
                "-D",
                &d,
                "-U",
                "ops",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
        )?;
        let mut opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c max_connections=60",
            cluster.dir().display()
        );
        // Preloaded where the server ships it, so tests can `CREATE EXTENSION pg_stat_statements`.
        // `initdb` may be a symlink (/usr/local/bin → /usr/lib/postgresql/15/bin).
        let real_bin =
            std::fs::canonicalize(bin.join("initdb")).unwrap_or_else(|_| bin.join("initdb"));
        let lib = real_bin
            .parent()
            .and_then(|b| b.parent())
            .map(|p| p.join("lib/pg_stat_statements.so"));
        if lib.is_some_and(|l| l.exists()) {
            opts.push_str(" -c shared_preload_libraries=pg_stat_statements");
        }
        let log = cluster.dir().join("server.log").display().to_string();
        cluster
            .run(
                "pg_ctl",
                &["-D", &d, "-l", &log, "-w", "-t", "60", "-o", &opts, "start"],
            )
            .map_err(|e| {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                fail(format!(
                    "{e}; server log: {}",
                    tail.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
                ))
            })?;
        cluster.watchdog = Some(cluster.start_watchdog(&bin, &data)?);
        Ok(cluster)
    }

    /// A process of its own (its own process group, so a signal to ours does not reach it)
    /// that waits for end of file on its stdin, which only this process holds, then stops the
    /// server and removes its directory. Waiting on a pipe, not polling: it acts the moment
    /// this process is gone.
    fn start_watchdog(
        &self,
        bin: &Path,
        data: &Path,
    ) -> Result<(std::process::Child, std::process::ChildStdin)> {
        use std::os::unix::process::CommandExt;
        let stop = if self.as_postgres {
            r#"runuser -u postgres -- "$PG_CTL" -D "$DATA" -m immediate -w stop"#
        } else {
            r#""$PG_CTL" -D "$DATA" -m immediate -w stop"#
        };
        let script = format!(r#"cat >/dev/null; {stop} >/dev/null 2>&1; rm -rf "$DIR""#);
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .env("PG_CTL", bin.join("pg_ctl"))
            .env("DATA", data)
            .env("DIR", self.dir())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| fail(format!("starting the cluster's watchdog: {e}")))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| fail("the watchdog has no stdin"))?;
        Ok((child, stdin))
    }

    fn dir(&self) -> &Path {
        self.data
            .as_ref()
            .map(|d| d.path())
            .unwrap_or(Path::new("/tmp"))
    }

    fn run(&mut self, tool: &str, args: &[&str]) -> Result<String> {
        let bin = self
            .bin
            .as_ref()
            .ok_or_else(|| fail("an external server has no tools"))?
            .join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        cmd.args(args).current_dir(self.dir());
        output(&mut cmd)
    }

    /// The server's data directory (`None` for an external server).
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.data.as_ref().map(|d| d.path().join("data"))
    }

    /// The admin connection string (database `postgres`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A config for database `db` on this server.
    pub fn config(&self, db: &str) -> Result<PgConfig> {
        Ok(PgConfig::new(&self.url)?.with_dbname(db))
    }

    /// A new pool for the existing database `name` (a second runner, as on another machine).
    pub fn database_pool(&self, name: &str) -> Result<Postgres> {
        Postgres::new(self.config(name)?)
    }

    /// Creates an empty database `name` and returns a pool for it.
    pub async fn database(&self, name: &str) -> Result<Postgres> {
        let admin = Postgres::new(PgConfig::new(&self.url)?)?;
        let client = admin.client().await?;
        // One statement per call: DROP / CREATE DATABASE cannot run in a transaction block.
        for sql in [
            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            format!("CREATE DATABASE \"{name}\""),
        ] {
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| crate::error::pg_error("create_database", &e))?;
        }
        Postgres::new(self.config(name)?)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Some(dir) = &self.data {
            let d = dir.path().join("data").display().to_string();
            if let Err(e) = self.run("pg_ctl", &["-D", &d, "-m", "immediate", "-w", "stop"]) {
                eprintln!("stopping the test cluster: {e}");
            }
        }
        // The server is stopped: let the watchdog finish (it finds nothing to stop) and reap it.
        if let Some((mut child, stdin)) = self.watchdog.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}
