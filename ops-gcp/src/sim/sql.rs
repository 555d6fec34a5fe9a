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

impl SimState {
    /// Creates an instance with daily backups at 03:00, PITR on, 7 kept, and `runs` successful
    /// automated backups a day apart (newest yesterday).
    pub(super) fn create_sql_instance(&mut self, instance: &str, runs: u32) {
        let now = self.now();
        let mut inst = SimInstance {
            backup_config: json!({"kind": "sql#backupConfiguration", "enabled": true, "startTime": "03:00",
                "pointInTimeRecoveryEnabled": true, "transactionLogRetentionDays": 7,
                "backupRetentionSettings": {"retentionUnit": "COUNT", "retainedBackups": 7},
                "backupTier": "STANDARD"}),
            runs: Vec::new(),
            restored_from: None,
        };
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
                    "kind": "sql#instance", "name": i, "project": self.project, "state": "RUNNABLE",
                    "databaseVersion": "POSTGRES_15", "region": self.region,
                    "settings": {"kind": "sql#settings", "tier": "db-custom-2-7680", "activationPolicy": "ALWAYS",
                                 "backupConfiguration": inst.backup_config}}),
                ),
                None => not_found("instance"),
            },
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
                if !self.sql_instances.contains_key(*target) {
                    return not_found("instance");
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

fn rename(query: &BTreeMap<String, String>, from: &str, to: &str) -> BTreeMap<String, String> {
    let mut q = query.clone();
    if let Some(v) = q.remove(from) {
        q.insert(to.to_string(), v);
    }
    q
}
