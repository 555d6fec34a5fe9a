//! How a [`KubeCanary`] moves traffic: replicas per slot for a replica ratio (gaining slots
//! first), or an HTTPRoute's weights written with its `resourceVersion` and waited on until
//! every parent Gateway has accepted them.

use ops_core::poll::{Every, Polled, poll_until};
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;

use super::route::{self, HttpRoute, RouteReadiness};
use super::{CanaryTraffic, KubeCanary, SlotView, bad};
use crate::client::PROVIDER;

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Replicas per slot for `percent` shares of `total`, or why the total cannot represent them.
pub fn replicas_for(percent: &[u8], total: u32) -> Result<Vec<u32>> {
    let step = 100 / gcd(100, u64::from(total).max(1));
    percent
        .iter()
        .map(|p| {
            let scaled = u64::from(*p) * u64::from(total);
            if scaled % 100 != 0 {
                let needs = 100 / gcd(100, u64::from(*p)).max(1);
                return Err(bad(
                    "split",
                    format!(
                        "{p} % of {total} replicas is not a whole number of pods: with {total} replicas a share moves in steps of {step} % ({p} % needs a multiple of {needs} replicas); use more replicas or an HTTPRoute"
                    ),
                ));
            }
            u32::try_from(scaled / 100).map_err(|_| bad("replicas", "too many"))
        })
        .collect()
}

impl KubeCanary {
    fn route_path(&self, route: &str) -> String {
        format!(
            "apis/gateway.networking.k8s.io/v1/namespaces/{}/httproutes/{route}",
            self.client.namespace()
        )
    }

    /// The HTTPRoute, when traffic is split by one.
    pub async fn route(&self) -> Result<HttpRoute> {
        let CanaryTraffic::HttpRoute { route, .. } = &self.traffic else {
            return Err(Error::unsupported(
                self.target.clone(),
                "route",
                "an HTTPRoute: this canary splits by replica ratio",
            ));
        };
        let url = self.client.url(&self.route_path(route), &[])?;
        self.client
            .get("get_http_route", url, &format!("httproute {route}"))
            .await
    }

    /// Gives each slot `percent[i]` of the traffic.
    pub(super) async fn move_traffic(&self, views: &[SlotView], percent: &[u8]) -> Result<()> {
        match &self.traffic {
            CanaryTraffic::ReplicaRatio { replicas, .. } => {
                let counts = replicas_for(percent, *replicas)?;
                self.check_service(views).await?;
                self.scale_slots(views, &counts).await
            }
            CanaryTraffic::HttpRoute { .. } => {
                // A slot gaining traffic must run: one left at 0 replicas is started first.
                let weights = self.weights(views).await?;
                let serving = self.serving_replicas(views, &weights);
                for (i, v) in views.iter().enumerate() {
                    let stopped = v.deployment.spec.as_ref().and_then(|s| s.replicas) == Some(0);
                    if percent[i] > 0 && stopped {
                        self.slots[i].write_replicas("split", serving).await?;
                        self.slots[i]
                            .wait_for_rollout(self.rollout_deadline)
                            .await?;
                    }
                }
                self.write_weights(percent, false).await
            }
        }
    }

    /// Scales slots to `replicas`: the ones gaining first, each rollout followed, so the
    /// serving capacity never dips.
    async fn scale_slots(&self, views: &[SlotView], replicas: &[u32]) -> Result<()> {
        let now = |v: &SlotView| {
            v.deployment
                .spec
                .as_ref()
                .and_then(|s| s.replicas)
                .map_or(1, |n| u32::try_from(n).unwrap_or(0))
        };
        let mut order: Vec<usize> = (0..views.len()).collect();
        order.sort_by_key(|i| replicas[*i] <= now(&views[*i]));
        for i in order {
            if replicas[i] != now(&views[i]) {
                self.slots[i].write_replicas("split", replicas[i]).await?;
            }
            self.slots[i]
                .wait_for_rollout(self.rollout_deadline)
                .await?;
        }
        Ok(())
    }

    /// Writes `percent` per slot as the route's weights, then waits until the gateway has it.
    /// With `dry_run`, the API server checks the write (`dryRun=All`) and nothing changes.
    pub(super) async fn write_weights(&self, percent: &[u8], dry_run: bool) -> Result<()> {
        let CanaryTraffic::HttpRoute {
            route: name,
            rule,
            services,
            ..
        } = &self.traffic
        else {
            return Ok(());
        };
        let query: &[(&str, &str)] = if dry_run { &[("dryRun", "All")] } else { &[] };
        let url = self.client.url(&self.route_path(name), query)?;
        let namespace = self.client.namespace().to_string();
        let change = |route: &mut HttpRoute| -> Result<()> {
            let r = route
                .spec
                .rules
                .get_mut(*rule)
                .ok_or_else(|| bad("rule", format!("httproute {name} has no rule {rule}")))?;
            let port = r.backend_refs.iter().find_map(|b| b.port);
            for (service, p) in services.iter().zip(percent) {
                let weight = Some(i32::from(*p));
                match r
                    .backend_refs
                    .iter_mut()
                    .find(|b| b.is_service(service, &namespace))
                {
                    Some(b) => b.weight = weight,
                    None if *p > 0 => r.backend_refs.push(route::HttpBackendRef {
                        name: service.clone(),
                        kind: Some("Service".into()),
                        port,
                        weight,
                        ..Default::default()
                    }),
                    None => {}
                }
            }
            route.status = None;
            Ok(())
        };
        let write = |route: HttpRoute| {
            let url = url.clone();
            async move {
                let mut body =
                    serde_json::to_value(&route).map_err(|e| bad("route", e.to_string()))?;
                body["apiVersion"] = route::GATEWAY_API_VERSION.into();
                body["kind"] = "HTTPRoute".into();
                self.client
                    .write("replace_http_route", Method::PUT, url, &body, None)
                    .await
            }
        };
        if dry_run {
            let mut route = self.route().await?;
            change(&mut route)?;
            return write(route).await.map(|_| ());
        }
        crate::client::replace(
            "set_traffic",
            &format!("httproute {name}"),
            || self.route(),
            write,
            change,
            |a: &HttpRoute, b: &HttpRoute| a.spec == b.spec,
        )
        .await?;
        self.wait_for_route(name).await
    }

    /// Waits until every parent Gateway accepted the route's generation and resolved its
    /// backends.
    async fn wait_for_route(&self, name: &str) -> Result<()> {
        let clock = self.client.clock().clone();
        let fail = |detail: String| {
            Error::new(
                PROVIDER,
                "set_traffic",
                ErrorKind::VerificationFailed {
                    check: format!("httproute {name} programmed"),
                    detail,
                },
            )
        };
        let polled = poll_until(
            clock.as_ref(),
            self.route_deadline,
            Every::fixed(self.poll),
            RouteReadiness::Pending,
            |r| match r {
                RouteReadiness::Programmed => Ok(Some(())),
                RouteReadiness::Refused(why) => Err(fail(why.clone())),
                RouteReadiness::Pending => Ok(None),
            },
            |_| async { Ok(self.route().await?.readiness()) },
        )
        .await?;
        match polled {
            Polled::Done(()) => Ok(()),
            Polled::TimedOut(_) => Err(fail(format!(
                "no gateway accepted its generation within {:?} (is a gateway controller running?)",
                self.route_deadline
            ))),
        }
    }
}
