//! One escalation model: a [`NotifyRouter`]'s routes and escalation levels as the levels and
//! matrix of an [`IncidentResponse`], so an incident escalates by the router's configuration
//! (and by any rule the incident config adds: unresolved time, a metric, leadership at once),
//! through the router's channels, with `@on-call` resolved when each level fires.

use std::sync::Arc;

use async_trait::async_trait;
use ops_core::contracts::{Notification, Notifier, Receipt};
use ops_core::runbooks::{EscalationRule, IncidentConfig, IncidentResponse, Trigger};
use ops_core::{Error, Result};

use crate::router::{NotifyRouter, RouterConfig};

/// The level name of the router's severity routes: told at every declaration.
pub const ROUTES_LEVEL: &str = "routes";

/// One router channel as a notifier.
struct RouterChannel {
    router: NotifyRouter,
    channel: String,
}

#[async_trait]
impl Notifier for RouterChannel {
    fn name(&self) -> &str {
        &self.channel
    }

    async fn send(&self, n: &Notification) -> Result<Receipt> {
        n.validate()?;
        self.router
            .deliver(std::slice::from_ref(&self.channel), n)
            .await
            .receipt(&self.channel, n)
    }
}

impl NotifyRouter {
    /// An [`IncidentResponse`] escalating by this router's matrix. Its first level,
    /// [`ROUTES_LEVEL`], sends by the severity routes; each channel of the router's escalation
    /// level `after = T` becomes a level told when nobody has acknowledged within `T`. The
    /// rules of `config.escalation` come after those and may name any channel of the router
    /// (`when = "unresolved"`, `"metric"`, `"declared"`). The router's own timers are off for
    /// these incidents: the response escalates, once.
    ///
    /// ```
    /// # use std::{collections::BTreeMap, sync::Arc};
    /// # use ops_core::adapters::LogNotifier;
    /// # use ops_core::contracts::Notifier;
    /// # use ops_core::runbooks::{IncidentConfig, RunbookConfig};
    /// use ops_notify::{NotifyRouter, RouterConfig};
    /// let config = RouterConfig::from_toml(
    ///     "[routes]\ncritical = [\"slack\"]\n[[escalation]]\nafter = \"15m\"\nchannels = [\"pager\"]",
    /// )?;
    /// let channels: BTreeMap<String, Arc<dyn Notifier>> = ["slack", "pager"]
    ///     .map(|n| (n.to_string(), Arc::new(LogNotifier::new(n)) as Arc<dyn Notifier>))
    ///     .into();
    /// let response = NotifyRouter::new(config, channels)?.incident_response(IncidentConfig::default())?;
    /// # Ok::<(), ops_core::Error>(())
    /// ```
    pub fn incident_response(&self, mut config: IncidentConfig) -> Result<IncidentResponse> {
        let quiet = self.without_escalation();
        let mut levels: Vec<String> = Vec::new();
        let mut rules: Vec<EscalationRule> = Vec::new();
        for level in &self.config().escalation {
            for channel in &level.channels {
                if !levels.contains(channel) {
                    levels.push(channel.clone());
                }
                rules.push(EscalationRule::new(
                    channel.clone(),
                    Trigger::Unacknowledged { after: level.after },
                ));
            }
        }
        for rule in &config.escalation {
            if rule.level != ROUTES_LEVEL && !levels.contains(&rule.level) {
                if !self.has_channel(&rule.level) {
                    return Err(Error::invalid_input(
                        "notify",
                        "incident_response",
                        "escalation",
                        format!("{:?} is not a channel of the router", rule.level),
                    ));
                }
                levels.push(rule.level.clone());
            }
        }
        rules.append(&mut config.escalation);
        config.escalation = rules;
        let mut response = IncidentResponse::new(config)
            .level(ROUTES_LEVEL, Arc::new(quiet.clone()))
            .with_clock(self.clock());
        for channel in levels {
            let level = RouterChannel {
                router: quiet.clone(),
                channel: channel.clone(),
            };
            response = response.level(channel, Arc::new(level));
        }
        Ok(response)
    }

    /// The same router, channels and on-call source, with no timed escalation of its own.
    fn without_escalation(&self) -> NotifyRouter {
        let config = RouterConfig {
            escalation: Vec::new(),
            ..self.config().clone()
        };
        self.with_config(config)
    }
}
