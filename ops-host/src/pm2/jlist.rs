//! `pm2 jlist`, decoded: each process's name, status, restarts, uptime, memory and version.
//!
//! Only these fields are read. pm2's JSON also holds each process's whole environment
//! (`pm2_env.env`, with its secrets): it is never kept, logged or quoted in an error — a decode
//! error names the line and column only.

use chrono::{DateTime, Utc};
use ops_core::http::lenient;
use ops_core::{Error, ErrorKind, Result};
use serde::Deserialize;

/// A process's state as pm2 names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pm2Status {
    /// Running.
    Online,
    /// Starting.
    Launching,
    /// Being stopped.
    Stopping,
    /// Stopped by a command.
    Stopped,
    /// Given up on: it exited too often, too fast.
    Errored,
    /// Ran once and ended (`--no-autorestart`).
    OneLaunch,
    /// A status this version does not know.
    Other(String),
}

impl Pm2Status {
    fn parse(s: &str) -> Self {
        match s {
            "online" => Self::Online,
            "launching" => Self::Launching,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            "errored" => Self::Errored,
            "one-launch-status" => Self::OneLaunch,
            other => Self::Other(other.chars().take(40).collect()),
        }
    }

    /// Its name as pm2 writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Online => "online",
            Self::Launching => "launching",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Errored => "errored",
            Self::OneLaunch => "one-launch-status",
            Self::Other(s) => s,
        }
    }
}

/// One process of `pm2 jlist`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pm2Process {
    /// Its name (`--name`, or the ecosystem file's `name`).
    pub name: String,
    /// pm2's id for it.
    pub pm_id: u64,
    /// The OS process id (0 when not running).
    pub pid: u64,
    /// Its status.
    pub status: Pm2Status,
    /// How often pm2 restarted it.
    pub restarts: u64,
    /// Of which restarts that came too fast after a start (pm2's `unstable_restarts`).
    pub unstable_restarts: u64,
    /// When it last started.
    pub started_at: Option<DateTime<Utc>>,
    /// Resident memory, in bytes.
    pub memory_bytes: u64,
    /// CPU, in percent of one core.
    pub cpu_percent: f64,
    /// pm2's memory limit (`max_memory_restart`), in bytes.
    pub memory_limit_bytes: Option<u64>,
    /// The version pm2 read from the app's `package.json`.
    pub version: Option<String>,
    /// `fork` or `cluster`.
    pub exec_mode: Option<String>,
    /// Where it runs from (its working directory), e.g. a release directory.
    pub cwd: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::count")]
    pm_id: u64,
    #[serde(default, deserialize_with = "lenient::count")]
    pid: u64,
    #[serde(default)]
    monit: Option<Monit>,
    #[serde(default)]
    pm2_env: Option<Env>,
}

#[derive(Deserialize, Default)]
struct Monit {
    #[serde(default, deserialize_with = "lenient::count")]
    memory: u64,
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    cpu: f64,
}

/// The fields of `pm2_env` read; everything else (the environment) is skipped unread.
#[derive(Deserialize, Default)]
struct Env {
    #[serde(default)]
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient::count")]
    restart_time: u64,
    #[serde(default, deserialize_with = "lenient::count")]
    unstable_restarts: u64,
    #[serde(default, deserialize_with = "lenient::opt_whole_number")]
    pm_uptime: Option<i64>,
    #[serde(default)]
    max_memory_restart: Option<serde_json::Value>,
    #[serde(default)]
    version: Option<serde_json::Value>,
    #[serde(default)]
    exec_mode: Option<String>,
    #[serde(default)]
    pm_cwd: Option<String>,
}

/// `300M`, `1G`, `512K`, or a number of bytes.
fn memory_limit(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        serde_json::Value::String(s) => {
            let s = s.trim();
            let (digits, unit) =
                s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
            let n: u64 = digits.parse().ok()?;
            let scale: u64 = match unit.trim().to_ascii_uppercase().as_str() {
                "" => 1,
                "K" | "KB" => 1 << 10,
                "M" | "MB" => 1 << 20,
                "G" | "GB" => 1 << 30,
                _ => return None,
            };
            n.checked_mul(scale)
        }
        _ => None,
    }
}

/// Decodes `pm2 jlist`'s output. Text before the JSON (pm2's own notices on the same stream,
/// which start with `[PM2]` when it spawns its daemon) is skipped; anything else is `Decode`,
/// naming only where it failed.
pub fn decode(output: &[u8]) -> Result<Vec<Pm2Process>> {
    let mut failure = decode_error("no JSON array in pm2 jlist's output".into());
    let mut raw = None;
    let starts =
        (0..output.len()).filter(|&i| output[i] == b'[' && (i == 0 || output[i - 1] == b'\n'));
    for start in starts {
        match serde_json::from_slice::<Vec<Raw>>(&output[start..]) {
            Ok(r) => {
                raw = Some(r);
                break;
            }
            // The error's own text can quote a value (an environment variable): never used.
            Err(e) => {
                failure = decode_error(format!(
                    "pm2 jlist: {:?} error at line {}, column {}",
                    e.classify(),
                    e.line(),
                    e.column()
                ))
            }
        }
    }
    let raw = raw.ok_or(failure)?;
    Ok(raw
        .into_iter()
        .map(|r| {
            let env = r.pm2_env.unwrap_or_default();
            let monit = r.monit.unwrap_or_default();
            Pm2Process {
                name: r.name.unwrap_or_default(),
                pm_id: r.pm_id,
                pid: r.pid,
                status: Pm2Status::parse(env.status.as_deref().unwrap_or("")),
                restarts: env.restart_time,
                unstable_restarts: env.unstable_restarts,
                started_at: env.pm_uptime.and_then(DateTime::from_timestamp_millis),
                memory_bytes: monit.memory,
                cpu_percent: if monit.cpu.is_finite() {
                    monit.cpu
                } else {
                    0.0
                },
                memory_limit_bytes: env.max_memory_restart.as_ref().and_then(memory_limit),
                version: env.version.and_then(|v| match v {
                    serde_json::Value::String(s) if s != "N/A" => Some(s),
                    _ => None,
                }),
                exec_mode: env
                    .exec_mode
                    .map(|m| m.trim_end_matches("_mode").to_string()),
                cwd: env.pm_cwd,
            }
        })
        .collect())
}

fn decode_error(detail: String) -> Error {
    Error::new("host", "pm2", ErrorKind::Decode { detail })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const JLIST: &str = r#"[{"pid":3776,"name":"api","pm2_env":{"status":"online","restart_time":2,"unstable_restarts":0,"pm_uptime":1796130384113,"max_memory_restart":314572800,"version":"2.1.0","exec_mode":"cluster_mode","pm_cwd":"/srv/app/releases/v2.1.0","env":{"DB_PASSWORD":"hunter2-secret"}},"pm_id":0,"monit":{"memory":57851904,"cpu":28.3}},
{"pid":0,"name":"worker","pm2_env":{"status":"errored","restart_time":16,"unstable_restarts":16,"version":"N/A","max_memory_restart":"300M"},"pm_id":1,"monit":{"memory":0,"cpu":0}}]"#;

    #[test]
    fn the_fields_read_and_the_environment_not() {
        let p = decode(JLIST.as_bytes()).unwrap();
        assert_eq!(p[0].name, "api");
        assert_eq!(p[0].status, Pm2Status::Online);
        assert_eq!((p[0].restarts, p[0].memory_bytes), (2, 57_851_904));
        assert_eq!(p[0].memory_limit_bytes, Some(300 << 20));
        assert_eq!(p[0].version.as_deref(), Some("2.1.0"));
        assert_eq!(p[0].exec_mode.as_deref(), Some("cluster"));
        assert_eq!(p[1].status, Pm2Status::Errored);
        assert_eq!(p[1].version, None);
        assert_eq!(p[1].memory_limit_bytes, Some(300 << 20));
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn notices_before_the_json_are_skipped_and_garbage_is_a_decode_error() {
        let noisy = format!(
            ">>>> In-memory PM2 is out-of-date, do:\n[PM2] Spawning PM2 daemon with pm2_home=/x\n\
             [PM2] PM2 Successfully daemonized\n{JLIST}"
        );
        assert_eq!(decode(noisy.as_bytes()).unwrap().len(), 2);
        assert_eq!(decode(b"[]").unwrap(), vec![]);
        for bad in [&b""[..], b"not json", b"[{\"pm_id\": {}}]", b"[1,2"] {
            let e = decode(bad).unwrap_err();
            assert!(matches!(e.kind(), ErrorKind::Decode { .. }), "{e}");
        }
    }

    #[test]
    fn a_decode_error_never_quotes_the_environment() {
        let leaky =
            r#"[{"name":"api","pm2_env":{"status":"online","restart_time":"hunter2-secret"}}]"#;
        let e = decode(leaky.as_bytes()).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    proptest! {
        #[test]
        fn any_output_decodes_or_is_a_decode_error(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Err(e) = decode(&bytes) {
                prop_assert!(matches!(e.kind(), ErrorKind::Decode { .. }), "{}", e);
            }
        }

        #[test]
        fn any_json_values_in_the_known_fields_never_panic(
            status in ".{0,12}", restarts in any::<i64>(), mem in any::<f64>(), limit in ".{0,8}",
        ) {
            let text = serde_json::json!([{
                "name": "a", "pm2_env": {"status": status, "restart_time": restarts, "max_memory_restart": limit},
                "monit": {"memory": mem, "cpu": mem},
            }]).to_string();
            let _ = decode(text.as_bytes());
        }
    }
}
