//! The simulated Cloud SQL Admin v1: instances with backup configuration, backup runs, and
//! operations that move PENDING → RUNNING → DONE on the simulator's clock.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::SimState;
use super::cloud_run::time;
use super::http::{Reply, google_error};

#[derive(Debug, Clone)]
pub(super) struct SimInstance {
    pub backup_config: Value,
    pub runs: Vec<SimRun>,
    pub restored_from: Option<(String, u64)>,
    /// `RUNNABLE`, or `PENDING_CREATE` until its creation finishes.
    pub state: &'static str,
    pub tier: String,
    pub version: String,
    /// A point-in-time clone's source and time.
    pub cloned_from: Option<(String, DateTime<Utc>)>,
    /// Its address.
    pub ip: String,
    /// CPU and memory utilisation its metrics report (none: no data).
    pub usage: Option<(f64, f64)>,
    /// A tier change in progress: the new tier, set when its operation finishes.
    pub pending_tier: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct SimRun {
    id: u64,
    status: &'static str,
    kind: &'static str,
    description: String,
    enqueued: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub(super) struct SimSqlOp {
    name: String,
    kind: &'static str,
    instance: String,
    started: DateTime<Utc>,
    done_at: DateTime<Utc>,
    backup_id: Option<u64>,
    restore_from: Option<(String, u64)>,
    fails: bool,
    settled: bool,
}

impl SimInstance {
    fn new(backup_config: Value, state: &'static str, ip: String) -> Self {
        Self {
            backup_config,
            runs: Vec::new(),
            restored_from: None,
            state,
            tier: "db-custom-2-7680".into(),
            version: "POSTGRES_15".into(),
            cloned_from: None,
            ip,
            usage: None,
            pending_tier: None,
        }
    }
}

impl SimState {
    /// Creates an instance with daily backups at 03:00, PITR on, 7 kept, and `runs` successful
    /// automated backups a day apart (newest yesterday).
    pub(super) fn create_sql_instance(&mut self, instance: &str, runs: u32) {
        let now = self.now();
        let ip = format!("10.20.0.{}", self.sql_instances.len() + 2);
        let mut inst = SimInstance::new(
            json!({"kind": "sql#backupConfiguration", "enabled": true, "startTime": "03:00",
                "pointInTimeRecoveryEnabled": true, "transactionLogRetentionDays": 7,
                "backupRetentionSettings": {"retentionUnit": "COUNT", "retainedBackups": 7},
                "backupTier": "STANDARD"}),
            "RUNNABLE",
            ip,
        );
        for day in (1..=runs).rev() {
            self.next_sql_id += 1;
            let at = now - chrono::Duration::days(day as i64);
            inst.runs.push(SimRun {
                id: self.next_sql_id,
                status: "SUCCESSFUL",
                kind: "AUTOMATED",
                description: String::new(),
                enqueued: at,
                end: Some(at + chrono::Duration::minutes(4)),
            });
        }
        self.sql_instances.insert(instance.to_string(), inst);
    }

    fn render_run(&self, instance: &str, r: &SimRun) -> Value {
        let mut v = json!({
            "kind": "sql#backupRun",
            "id": r.id.to_string(),
            "status": r.status,
            "type": r.kind,
            "backupKind": "SNAPSHOT",
            "instance": instance,
            "enqueuedTime": time(r.enqueued),
            "startTime": time(r.enqueued),
            "windowStartTime": time(r.enqueued),
            "location": self.region,
            "databaseVersion": "POSTGRES_15",
            "selfLink": format!("https://sqladmin.googleapis.com/v1/projects/{}/instances/{instance}/backupRuns/{}", self.project, r.id),
        });
        if !r.description.is_empty() {
            v["description"] = json!(r.description);
        }
        if let Some(end) = r.end {
            v["endTime"] = json!(time(end));
        }
        if r.status == "FAILED" {
            v["error"] = json!({"kind": "sql#operationError", "code": "BACKUP_FAILED", "message": "The backup failed (simulated)."});
        }
        v
    }

    fn render_sql_op(&self, op: &SimSqlOp) -> Value {
        let now = self.now();
        let status = if op.settled {
            "DONE"
        } else if now > op.started {
            "RUNNING"
        } else {
            "PENDING"
        };
        let mut v = json!({
            "kind": "sql#operation",
            "name": op.name,
            "status": status,
            "operationType": op.kind,
            "insertTime": time(op.started),
            "user": "ops@sim-project.iam.gserviceaccount.com",
            "targetId": op.instance,
            "targetProject": self.project,
            "targetLink": format!("https://sqladmin.googleapis.com/v1/projects/{}/instances/{}", self.project, op.instance),
            "selfLink": format!("https://sqladmin.googleapis.com/v1/projects/{}/operations/{}", self.project, op.name),
        });
        if let Some(id) = op.backup_id {
            v["backupContext"] = json!({"kind": "sql#backupContext", "backupId": id.to_string()});
        }
        if op.settled {
            v["endTime"] = json!(time(op.done_at));
            if op.fails {
                v["error"] = json!({"kind": "sql#operationErrors", "errors": [
                    {"kind": "sql#operationError", "code": "BACKUP_FAILED", "message": "The backup failed (simulated)."}]});
            }
        }
        v
    }

    fn settle_sql(&mut self) {
        let now = self.now();
        for i in 0..self.sql_ops.len() {
            let op = self.sql_ops[i].clone();
            if op.settled || op.done_at > now {
                continue;
            }
            self.sql_ops[i].settled = true;
            let Some(inst) = self.sql_instances.get_mut(&op.instance) else {
                continue;
            };
            match op.kind {
                "BACKUP_VOLUME" => {
                    if let Some(r) = inst.runs.iter_mut().find(|r| Some(r.id) == op.backup_id) {
                        r.status = if op.fails { "FAILED" } else { "SUCCESSFUL" };
                        r.end = Some(op.done_at);
                    }
                }
                "DELETE_BACKUP" => inst.runs.retain(|r| Some(r.id) != op.backup_id),
                "RESTORE_VOLUME" => inst.restored_from = op.restore_from.clone(),
                "CREATE" | "CLONE" => inst.state = "RUNNABLE",
                "UPDATE" => {
                    if let Some(t) = inst.pending_tier.take() {
                        inst.tier = t;
                    }
                    inst.state = "RUNNABLE";
                }
                "DELETE" => {
                    self.sql_instances.remove(&op.instance);
                }
                _ => {}
            }
        }
    }

    fn start_sql_op(
        &mut self,
        kind: &'static str,
        instance: &str,
        backup_id: Option<u64>,
        restore_from: Option<(String, u64)>,
        fails: bool,
    ) -> Reply {
        let now = self.now();
        let op = SimSqlOp {
            name: format!(
                "{:08x}-{:04x}-sim-{}",
                fastrand::u32(..),
                fastrand::u16(..),
                self.sql_ops.len()
            ),
            kind,
            instance: instance.to_string(),
            started: now,
            done_at: now + chrono::Duration::from_std(self.operation_delay).unwrap_or_default(),
            backup_id,
            restore_from,
            fails,
            settled: false,
        };
        self.sql_ops.push(op.clone());
        self.ledger.mutated();
        self.settle_sql();
        let op = self.sql_ops.last().cloned().expect("pushed");
        Reply::json(200, self.render_sql_op(&op))
    }

    pub(super) fn sql_route(
        &mut self,
        method: &str,
        rest: &[&str],
        query: &BTreeMap<String, String>,
        body: &Value,
    ) -> Reply {
        self.settle_sql();
        let not_found = |what: &str| {
            google_error(
                404,
                "NOT_FOUND",
                &format!("The Cloud SQL {what} does not exist."),
            )
        };
        match (method, rest) {
            ("GET", ["operations", name]) => match self.sql_ops.iter().find(|o| o.name == *name) {
                Some(op) => Reply::json(200, self.render_sql_op(op)),
                None => not_found("operation"),
            },
            ("GET", ["instances", i]) => match self.sql_instances.get(*i) {
                Some(inst) => Reply::json(
                    200,
                    json!({
                    "kind": "sql#instance", "name": i, "project": self.project, "state": inst.state,
                    "databaseVersion": inst.version, "region": self.region,
                    "connectionName": format!("{}:{}:{i}", self.project, self.region),
                    "ipAddresses": [{"type": "PRIVATE", "ipAddress": inst.ip}],
                    "settings": {"kind": "sql#settings", "tier": inst.tier, "activationPolicy": "ALWAYS",
                                 "backupConfiguration": inst.backup_config}}),
                ),
                None => not_found("instance"),
            },
            ("POST", ["instances"]) => self.insert_instance(body),
            ("PATCH", ["instances", i]) => {
                let Some(inst) = self.sql_instances.get_mut(*i) else {
                    return not_found("instance");
                };
                if let Some(tier) = body.pointer("/settings/tier").and_then(Value::as_str) {
                    if !tier.starts_with("db-") {
                        return google_error(400, "INVALID_ARGUMENT", "Invalid tier.");
                    }
                    // A new tier restarts the instance: down until the operation ends.
                    inst.pending_tier = Some(tier.to_string());
                    inst.state = "MAINTENANCE";
                }
                self.start_sql_op("UPDATE", i, None, None, false)
            }
            ("POST", ["instances", source, "clone"]) => self.clone_instance(source, body),
            ("DELETE", ["instances", i]) => {
                if !self.sql_instances.contains_key(*i) {
                    return not_found("instance");
                }
                self.start_sql_op("DELETE", i, None, None, false)
            }
            ("GET", ["instances", i, "backupRuns"]) => {
                let Some(inst) = self.sql_instances.get(*i) else {
                    return not_found("instance");
                };
                let mut runs: Vec<&SimRun> = inst.runs.iter().collect();
                runs.sort_by(|a, b| b.enqueued.cmp(&a.enqueued).then(b.id.cmp(&a.id)));
                let items: Vec<Value> = runs.iter().map(|r| self.render_run(i, r)).collect();
                let mut page = super::secret_manager::page(
                    items,
                    &rename(query, "maxResults", "pageSize"),
                    "items",
                );
                if let Some(obj) = page.body.as_object_mut() {
                    obj.remove("totalSize");
                    obj.insert("kind".into(), json!("sql#backupRunsList"));
                }
                page
            }
            ("GET", ["instances", i, "backupRuns", id]) => {
                let run = self
                    .sql_instances
                    .get(*i)
                    .and_then(|inst| inst.runs.iter().find(|r| r.id.to_string() == *id));
                match run {
                    Some(r) => Reply::json(200, self.render_run(i, r)),
                    None => not_found("backup run"),
                }
            }
            ("POST", ["instances", i, "backupRuns"]) => {
                let now = self.now();
                self.next_sql_id += 1;
                let id = self.next_sql_id;
                let fails = std::mem::take(&mut self.fail_next_sql_backup);
                let Some(inst) = self.sql_instances.get_mut(*i) else {
                    return not_found("instance");
                };
                inst.runs.push(SimRun {
                    id,
                    status: "RUNNING",
                    kind: "ON_DEMAND",
                    description: body
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    enqueued: now,
                    end: None,
                });
                self.start_sql_op("BACKUP_VOLUME", i, Some(id), None, fails)
            }
            ("DELETE", ["instances", i, "backupRuns", id]) => {
                let found = self
                    .sql_instances
                    .get(*i)
                    .and_then(|inst| inst.runs.iter().find(|r| r.id.to_string() == *id))
                    .map(|r| r.id);
                match found {
                    Some(id) => self.start_sql_op("DELETE_BACKUP", i, Some(id), None, false),
                    None => not_found("backup run"),
                }
            }
            ("POST", ["instances", target, "restoreBackup"]) => {
                let ctx = body
                    .get("restoreBackupContext")
                    .cloned()
                    .unwrap_or(Value::Null);
                let (Some(source), Some(id)) = (
                    ctx.get("instanceId").and_then(Value::as_str),
                    ctx.get("backupRunId").and_then(Value::as_str),
                ) else {
                    return google_error(
                        400,
                        "INVALID_ARGUMENT",
                        "restoreBackupContext.instanceId and backupRunId are required.",
                    );
                };
                match self.sql_instances.get(*target).map(|t| t.state) {
                    None => return not_found("instance"),
                    Some("RUNNABLE") => {}
                    Some(_) => {
                        return google_error(
                            409,
                            "FAILED_PRECONDITION",
                            "The instance is not running: it cannot be restored into yet.",
                        );
                    }
                }
                let exists = self.sql_instances.get(source).is_some_and(|inst| {
                    inst.runs
                        .iter()
                        .any(|r| r.id.to_string() == id && r.status == "SUCCESSFUL")
                });
                if !exists {
                    return google_error(
                        400,
                        "INVALID_ARGUMENT",
                        "The backup run does not exist or did not succeed.",
                    );
                }
                let id = id.parse().unwrap_or(0);
                self.start_sql_op(
                    "RESTORE_VOLUME",
                    target,
                    None,
                    Some((source.to_string(), id)),
                    false,
                )
            }
            _ => google_error(404, "NOT_FOUND", "not simulated"),
        }
    }
}

impl SimState {
    /// Hourly points of a Cloud SQL utilisation metric for `db` (`project:instance`).
    pub(super) fn sql_series(
        &self,
        metric: &str,
        db: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Reply {
        let instance = db.split_once(':').map(|(_, i)| i).unwrap_or(db);
        let value = match (
            self.sql_instances.get(instance).and_then(|i| i.usage),
            metric,
        ) {
            (Some((cpu, _)), "cloudsql.googleapis.com/database/cpu/utilization") => Some(cpu),
            (Some((_, mem)), "cloudsql.googleapis.com/database/memory/utilization") => Some(mem),
            _ => None,
        };
        let Some(value) = value else {
            return Reply::json(200, json!({"unit": "10^2.%"}));
        };
        let mut points = Vec::new();
        let mut t = start;
        while t < end {
            let next = t + chrono::Duration::hours(1);
            points.push(
                json!({"interval": {"startTime": time(t), "endTime": time(next.min(end))},
                               "value": {"doubleValue": value}}),
            );
            t = next;
        }
        points.reverse();
        Reply::json(
            200,
            json!({"timeSeries": [{
                "metric": {"type": metric},
                "resource": {"type": "cloudsql_database", "labels": {"project_id": self.project, "database_id": db, "region": self.region}},
                "metricKind": "GAUGE", "valueType": "DOUBLE", "points": points,
            }], "unit": "10^2.%"}),
        )
    }

    fn insert_instance(&mut self, body: &Value) -> Reply {
        let name = body.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty()
            || name.len() > 98
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return google_error(400, "INVALID_ARGUMENT", "Invalid instance name.");
        }
        if self.sql_instances.contains_key(name) {
            return google_error(
                409,
                "ALREADY_EXISTS",
                "The Cloud SQL instance already exists.",
            );
        }
        let backup = body
            .pointer("/settings/backupConfiguration")
            .cloned()
            .unwrap_or(json!({"enabled": false}));
        let ip = format!("10.20.0.{}", self.sql_instances.len() + 2);
        let mut inst = SimInstance::new(backup, "PENDING_CREATE", ip);
        if let Some(t) = body.pointer("/settings/tier").and_then(Value::as_str) {
            inst.tier = t.to_string();
        }
        if let Some(v) = body.get("databaseVersion").and_then(Value::as_str) {
            inst.version = v.to_string();
        }
        self.sql_instances.insert(name.to_string(), inst);
        self.start_sql_op("CREATE", name, None, None, false)
    }

    /// A clone, to a point in time when asked: the source needs point-in-time recovery on, and
    /// the time must lie within its transaction-log retention.
    fn clone_instance(&mut self, source: &str, body: &Value) -> Reply {
        let Some(src) = self.sql_instances.get(source).cloned() else {
            return google_error(404, "NOT_FOUND", "The Cloud SQL instance does not exist.");
        };
        let ctx = body.get("cloneContext").cloned().unwrap_or(Value::Null);
        let Some(dest) = ctx.get("destinationInstanceName").and_then(Value::as_str) else {
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "cloneContext.destinationInstanceName is required.",
            );
        };
        if self.sql_instances.contains_key(dest) {
            return google_error(
                409,
                "ALREADY_EXISTS",
                "The Cloud SQL instance already exists.",
            );
        }
        let now = self.now();
        let at = match ctx.get("pointInTime").and_then(Value::as_str) {
            None => now,
            Some(t) => {
                let Ok(at) = DateTime::parse_from_rfc3339(t) else {
                    return google_error(400, "INVALID_ARGUMENT", "Invalid pointInTime.");
                };
                let at = at.with_timezone(&Utc);
                if src.backup_config["pointInTimeRecoveryEnabled"] != true {
                    return google_error(
                        400,
                        "FAILED_PRECONDITION",
                        "Point-in-time recovery is not enabled for the source instance.",
                    );
                }
                let days = src.backup_config["transactionLogRetentionDays"]
                    .as_i64()
                    .unwrap_or(7);
                if at > now || at < now - chrono::Duration::days(days) {
                    return google_error(
                        400,
                        "INVALID_ARGUMENT",
                        "The requested point in time is outside the instance's point-in-time recovery window.",
                    );
                }
                at
            }
        };
        let ip = format!("10.20.0.{}", self.sql_instances.len() + 2);
        let mut inst = SimInstance::new(json!({"enabled": false}), "PENDING_CREATE", ip);
        inst.tier = src.tier.clone();
        inst.version = src.version.clone();
        inst.cloned_from = Some((source.to_string(), at));
        self.sql_instances.insert(dest.to_string(), inst);
        self.start_sql_op("CLONE", dest, None, None, false)
    }
}

fn rename(query: &BTreeMap<String, String>, from: &str, to: &str) -> BTreeMap<String, String> {
    let mut q = query.clone();
    if let Some(v) = q.remove(from) {
        q.insert(to.to_string(), v);
    }
    q
}
