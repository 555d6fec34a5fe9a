//! Every channel's settings load from TOML and from environment variables the same way, and
//! a missing or malformed setting is an error naming it — never the secret it holds.

use std::collections::HashMap;

use ops_core::ErrorKind;
use ops_core::config::{Env, from_toml};
use ops_notify::email::SmtpSecurity;
use ops_notify::{
    EmailConfig, EmailNotifier, PagerDuty, PagerDutyConfig, SlackApi, SlackApiConfig, SlackWebhook,
    SlackWebhookConfig,
};

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn field(err: &ops_core::Error) -> String {
    match err.kind() {
        ErrorKind::InvalidInput { field, .. } => field.clone(),
        other => panic!("not invalid input: {other:?}"),
    }
}

#[test]
fn a_missing_variable_is_named_and_blank_counts_as_missing() {
    let v = vars(&[("SLACK_BOT_TOKEN", "xoxb-1"), ("SLACK_CHANNEL", "  ")]);
    let lookup = |k: &str| v.get(k).cloned();
    let err = SlackApiConfig::from_vars(Env::new("slack", &lookup)).unwrap_err();
    assert_eq!(field(&err), "SLACK_CHANNEL");
    assert!(err.to_string().contains("channel id"), "{err}");

    let none = |_: &str| None;
    let err = SlackWebhookConfig::from_vars(Env::new("slack", &none)).unwrap_err();
    assert_eq!(field(&err), "SLACK_WEBHOOK_URL");
    let err = PagerDutyConfig::from_vars(Env::new("pagerduty", &none)).unwrap_err();
    assert_eq!(field(&err), "PAGERDUTY_ROUTING_KEY");
    let err = EmailConfig::from_vars(Env::new("email", &none)).unwrap_err();
    assert_eq!(field(&err), "EMAIL_TO");
}

#[test]
fn email_settings_read_from_the_environment_with_defaults_and_typed_errors() {
    let v = vars(&[
        ("SMTP_HOST", "smtp.acme.dev"),
        ("SMTP_PASSWORD", "hunter2"),
        ("SMTP_USERNAME", "ops"),
        ("EMAIL_FROM", "ops@acme.dev"),
        ("EMAIL_TO", "oncall@acme.dev, team@acme.dev"),
    ]);
    let lookup = |k: &str| v.get(k).cloned();
    let c = EmailConfig::from_vars(Env::new("email", &lookup)).unwrap();
    assert_eq!(
        (c.smtp.port, c.smtp.security),
        (587, SmtpSecurity::StartTls)
    );
    assert_eq!(c.to, ["oncall@acme.dev", "team@acme.dev"]);
    assert!(!format!("{c:?}").contains("hunter2"));
    EmailNotifier::new(c).unwrap();

    for (var, value) in [("SMTP_PORT", "70000"), ("SMTP_SECURITY", "ssl")] {
        let mut bad = v.clone();
        bad.insert(var.into(), value.into());
        let lookup = |k: &str| bad.get(k).cloned();
        let err = EmailConfig::from_vars(Env::new("email", &lookup)).unwrap_err();
        assert_eq!(field(&err), var);
    }
}

#[test]
fn clients_refuse_bad_settings_at_construction_without_echoing_secrets() {
    let err = SlackWebhook::new(SlackWebhookConfig::new("s", "not a url with s3cret")).unwrap_err();
    assert_eq!(field(&err), "url");
    assert!(!format!("{err} {err:?}").contains("s3cret"));

    let err = PagerDuty::new(PagerDutyConfig::new("pd", "short-s3cret", "api")).unwrap_err();
    assert_eq!(field(&err), "routing_key");
    assert!(!format!("{err} {err:?}").contains("short-s3cret"));

    let err = SlackApi::new(SlackApiConfig::new("s", "xoxb-1", "")).unwrap_err();
    assert_eq!(field(&err), "channel");

    let mut c = EmailConfig::new(
        "e",
        from_toml("host = \"localhost\"\nport = 25\nsecurity = \"plain\"").unwrap(),
        "ops@acme.dev",
        &[],
    );
    assert_eq!(field(&EmailNotifier::new(c.clone()).unwrap_err()), "to");
    c.to = vec!["not an address".into()];
    assert_eq!(field(&EmailNotifier::new(c).unwrap_err()), "to");
}

#[test]
fn toml_settings_take_their_defaults_and_refuse_unknown_keys() {
    let c: PagerDutyConfig =
        from_toml("routing_key = \"0123456789abcdef0123456789abcdef\"\nsource = \"api\"").unwrap();
    assert_eq!(c.name, "pagerduty");
    assert_eq!(
        c.events_url.as_str(),
        "https://events.pagerduty.com/v2/enqueue"
    );
    PagerDuty::new(c).unwrap();

    let err =
        from_toml::<SlackApiConfig>("token = \"xoxb-1\"\nchannel = \"C01\"\nchanel = \"typo\"")
            .unwrap_err();
    assert!(err.to_string().contains("chanel"), "{err}");
    let c: SlackApiConfig =
        from_toml("token = \"xoxb-1\"\nchannel = \"C01\"\n[http]\nread_timeout = \"5s\"").unwrap();
    assert_eq!(c.http.read_timeout.as_secs(), 5);
    SlackApi::new(c).unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 500,
        failure_persistence: None,
        ..Default::default()
    })]

    /// Any TOML text, and any environment, reads as settings or a typed error: never a panic,
    /// and never an error that echoes a secret value.
    #[test]
    fn any_settings_read_or_say_why(
        text in "(token|url|routing_key|source|channel|name|from|to|base_url|events_url|\\[smtp\\]|\\[http\\]|host|port|security|read_timeout| |=|\"|'|\\[|\\]|,|\\n|[a-z0-9:/._-]{0,12}){0,24}",
        port in "\\PC{0,8}",
        security in "\\PC{0,8}",
    ) {
        let _ = from_toml::<SlackWebhookConfig>(&text);
        let _ = from_toml::<SlackApiConfig>(&text);
        let _ = from_toml::<PagerDutyConfig>(&text);
        let _ = from_toml::<EmailConfig>(&text);
        let v = vars(&[
            ("SMTP_HOST", "smtp.acme.dev"),
            ("SMTP_PORT", &port),
            ("SMTP_SECURITY", &security),
            ("SMTP_PASSWORD", "hunter2-s3cret"),
            ("EMAIL_FROM", "ops@acme.dev"),
            ("EMAIL_TO", "oncall@acme.dev"),
        ]);
        let lookup = |k: &str| v.get(k).cloned();
        if let Err(e) = EmailConfig::from_vars(Env::new("email", &lookup)) {
            let typed = matches!(e.kind(), ErrorKind::InvalidInput { .. });
            proptest::prop_assert!(typed, "not InvalidInput");
            let shown = format!("{e} {e:?}");
            proptest::prop_assert!(!shown.contains("hunter2-s3cret"), "the password shows");
        }
    }
}
