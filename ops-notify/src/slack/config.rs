//! How to reach Slack: a webhook's settings and the Web API's, loadable from a config file or
//! the environment.

use std::fmt;

use ops_core::Result;
use ops_core::config::Env;
use ops_core::http::HttpConfig;
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

fn default_name() -> String {
    "slack".into()
}

fn default_api_base() -> Url {
    Url::parse("https://slack.com/api/").expect("a valid URL")
}

/// An incoming webhook's settings.
///
/// ```
/// use ops_notify::slack::SlackWebhookConfig;
/// let c: SlackWebhookConfig = ops_core::config::from_toml(r#"
/// name = "team"
/// url = "https://hooks.slack.com/services/T0/B0/x"
/// "#).unwrap();
/// assert_eq!(c.name, "team");
/// assert!(!format!("{c:?}").contains("hooks.slack.com"), "the URL is a secret");
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackWebhookConfig {
    /// The channel's name in receipts and reports (default `slack`).
    #[serde(default = "default_name")]
    pub name: String,
    /// The webhook URL (`https://hooks.slack.com/services/…`, a secret).
    pub url: SecretString,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpConfig,
}

impl fmt::Debug for SlackWebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackWebhookConfig")
            .field("name", &self.name)
            .field("url", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl SlackWebhookConfig {
    /// The webhook at `url`, named `name`.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: SecretString::from(url.into()),
            http: HttpConfig::default(),
        }
    }

    /// `SLACK_WEBHOOK_URL` from the environment.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(Env::from_env("slack"))
    }

    /// [`Self::from_env`] over any variable lookup.
    pub fn from_vars(env: Env<'_>) -> Result<Self> {
        Ok(Self::new(
            default_name(),
            env.required("SLACK_WEBHOOK_URL", "the incoming webhook URL")?,
        ))
    }
}

/// The Web API's settings: a bot token and the channel incidents are posted in.
///
/// ```
/// use ops_core::config::Env;
/// use ops_notify::slack::SlackApiConfig;
/// let vars = |k: &str| match k {
///     "SLACK_BOT_TOKEN" => Some("xoxb-1".to_string()),
///     "SLACK_CHANNEL" => Some("C0123".to_string()),
///     _ => None,
/// };
/// let c = SlackApiConfig::from_vars(Env::new("slack", &vars)).unwrap();
/// assert_eq!(c.channel, "C0123");
/// assert!(!format!("{c:?}").contains("xoxb-1"));
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackApiConfig {
    /// The channel's name in receipts and reports (default `slack`).
    #[serde(default = "default_name")]
    pub name: String,
    /// A bot token (`xoxb-…`, a secret).
    pub token: SecretString,
    /// The channel's id (`C…`: reading history needs the id, not the name).
    pub channel: String,
    /// The Web API base URL (`https://slack.com/api/`).
    #[serde(default = "default_api_base")]
    pub base_url: Url,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpConfig,
}

impl fmt::Debug for SlackApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackApiConfig")
            .field("name", &self.name)
            .field("token", &"[redacted]")
            .field("channel", &self.channel)
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl SlackApiConfig {
    /// `token` posting to `channel`, named `name`.
    pub fn new(
        name: impl Into<String>,
        token: impl Into<String>,
        channel: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            token: SecretString::from(token.into()),
            channel: channel.into(),
            base_url: default_api_base(),
            http: HttpConfig::default(),
        }
    }

    /// `SLACK_BOT_TOKEN` and `SLACK_CHANNEL` from the environment.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(Env::from_env("slack"))
    }

    /// [`Self::from_env`] over any variable lookup.
    pub fn from_vars(env: Env<'_>) -> Result<Self> {
        Ok(Self::new(
            default_name(),
            env.required("SLACK_BOT_TOKEN", "a bot token (xoxb-…)")?,
            env.required("SLACK_CHANNEL", "the channel id (C…)")?,
        ))
    }
}
