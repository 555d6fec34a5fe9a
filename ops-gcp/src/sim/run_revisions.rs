//! Deleting Cloud Run revisions in the simulator: etag-guarded, refused while a revision
//! serves traffic or is the service's newest ready or created one, as Cloud Run refuses it.

use serde_json::json;

use super::SimState;
use super::cloud_run::{effective_traffic, time};
use super::http::{Reply, google_error};

impl SimState {
    /// A revision's etag: it changes with nothing the simulator models, so it is its creation.
    pub(super) fn revision_etag(&self, name: &str) -> Option<String> {
        self.revisions
            .get(name)
            .map(|r| format!("\"rev-{}\"", r.created.timestamp_micros()))
    }

    pub(super) fn delete_revision(
        &mut self,
        name: &str,
        query: &std::collections::BTreeMap<String, String>,
    ) -> Reply {
        self.settle();
        let Some(rev) = self.revisions.get(name).cloned() else {
            return google_error(
                404,
                "NOT_FOUND",
                &format!("Resource '{name}' was not found"),
            );
        };
        if let Some(etag) = query.get("etag")
            && Some(etag) != self.revision_etag(name).as_ref()
        {
            return google_error(409, "ABORTED", "The revision's etag does not match.");
        }
        let short = name.rsplit('/').next().unwrap_or(name).to_string();
        if let Some(svc) = self.services.get(&rev.service) {
            let serving = effective_traffic(svc).iter().any(|(r, _)| *r == short)
                || svc.latest_ready == short
                || svc.latest_created == short;
            if serving {
                return google_error(
                    400,
                    "FAILED_PRECONDITION",
                    &format!(
                        "Revision {short} is serving traffic or is the latest revision and cannot be deleted."
                    ),
                );
            }
        }
        self.revisions.remove(name);
        self.ledger.mutated();
        let now = self.now();
        Reply::json(
            200,
            json!({
                "name": format!("projects/{}/locations/{}/operations/del-{}", self.project, self.region, fastrand::u32(..)),
                "done": true,
                "metadata": {"@type": "type.googleapis.com/google.cloud.run.v2.Revision", "name": name, "createTime": time(now)},
                "response": {"@type": "type.googleapis.com/google.cloud.run.v2.Revision", "name": name},
            }),
        )
    }
}
