//! Hostile runbook configs: every one is a typed `InvalidInput` naming the field, never a panic
//! and never a value that makes no sense accepted. Each case here was found by trying.

use ops_core::ErrorKind;
use ops_core::runbooks::*;

/// The field an `InvalidInput` names, or a panic with the error.
fn field_of<C: RunbookConfig + std::fmt::Debug>(toml: &str) -> String {
    match C::from_toml(toml) {
        Ok(c) => panic!("accepted {toml:?} as {c:?}"),
        Err(e) => match e.kind() {
            ErrorKind::InvalidInput { field, .. } => field.clone(),
            other => panic!("{toml:?}: not invalid input but {other:?}"),
        },
    }
}

#[test]
fn durations_that_overflow_are_rejected_by_the_parser() {
    for text in [
        "10000000000000000000s10000000000000000000s",
        "18446744073709551615s1s",
        "99999999999999999999999999999999999999999w",
        "1e400s",
        "100000000d",
        "36526d",
        "5000000000000000000000000ms",
        "1.7976931348623157e308s",
    ] {
        assert!(
            human_duration::parse(text).is_err(),
            "{text:?} must not parse"
        );
    }
    assert_eq!(
        human_duration::parse("36525d").unwrap(),
        MAX_AGE,
        "the ceiling itself parses"
    );
}

#[test]
fn every_duration_field_names_itself_when_too_long_or_zero() {
    let huge = "\"10000000000000000000s10000000000000000000s\"";
    assert_eq!(
        field_of::<RotateConfig>(&format!("grace_period = {huge}")),
        "grace_period"
    );
    assert_eq!(
        field_of::<RotateConfig>("grace_period = \"100000000d\""),
        "grace_period"
    );
    assert_eq!(
        field_of::<RotateConfig>("grace_period = \"367d\""),
        "grace_period"
    );
    assert_eq!(
        field_of::<RotateConfig>("grace_period = \"0s\""),
        "grace_period"
    );
    assert!(RotateConfig::from_toml("grace_period = \"366d\"").is_ok());

    assert_eq!(
        field_of::<DeployVerifyConfig>("error_watch = \"0s\""),
        "error_watch"
    );
    assert_eq!(
        field_of::<DeployVerifyConfig>("stabilization = \"0s\""),
        "stabilization"
    );
    assert_eq!(
        field_of::<DeployVerifyConfig>("error_watch = \"1m\"\nerror_poll = \"2m\""),
        "error_poll"
    );
    assert_eq!(
        field_of::<DeployVerifyConfig>("deploy_deadline = \"100000000000d\""),
        "deploy_deadline"
    );
    assert_eq!(
        field_of::<RolloutConfig>(
            "stages = [{ percent = 50, bake = \"400d\" }, { percent = 100, bake = \"0s\" }]"
        ),
        "stages[0].bake"
    );
    assert_eq!(
        field_of::<RolloutConfig>("inconclusive_wait = \"367d\""),
        "inconclusive_wait"
    );
    assert_eq!(field_of::<RightSizeConfig>("settle = \"0s\""), "settle");
    assert_eq!(
        field_of::<RollbackConfig>("stabilization = \"400d\""),
        "stabilization"
    );
    assert_eq!(
        field_of::<IncidentConfig>(
            "[priorities.P1]\nresponse_time = \"5m\"\nupdate_every = \"400d\"\nseverity = \"error\""
        ),
        "priorities.P1.update_every"
    );
    assert_eq!(field_of::<AgeAuditConfig>("max_age = \"0s\""), "max_age");
    assert!(
        AgeAuditConfig::from_toml("max_age = \"3650d\"").is_ok(),
        "an age may be long"
    );
    // A number of seconds is held to the same ceiling as text.
    assert_eq!(
        field_of::<HealthCheckConfig>("error_window = 1e300"),
        "error_window"
    );
    assert_eq!(
        field_of::<HealthCheckConfig>("error_window = nan"),
        "error_window"
    );
    assert_eq!(
        field_of::<HealthCheckConfig>("error_window = -1"),
        "error_window"
    );
}

#[test]
fn retention_counts_that_would_overflow_a_sum_are_handled() {
    // hourly + daily overflowed u32: a panic in debug, 0 ("keeps nothing") in release.
    let c = BackupVerifyConfig::from_toml("[retention]\nhourly = 4294967295\ndaily = 1").unwrap();
    assert_eq!(c.retention.hourly, u32::MAX);
    assert_eq!(
        field_of::<BackupVerifyConfig>(
            "[retention]\nhourly = 0\ndaily = 0\nweekly = 0\nmonthly = 0"
        ),
        "retention"
    );
    assert_eq!(
        field_of::<BackupVerifyConfig>("[retention]\nhourly = 4294967296"),
        "retention.hourly"
    );
}

#[test]
fn name_prefixes_are_plain_names_checked_at_load() {
    for bad in [
        "\" \"",
        "\"\"",
        "\"../../etc/x\"",
        "\"a/b\"",
        "\".hidden\"",
        "\"-x\"",
    ] {
        assert_eq!(
            field_of::<BackupVerifyConfig>(&format!("prune_prefix = {bad}")),
            "prune_prefix",
            "{bad}"
        );
        assert_eq!(
            field_of::<RestoreConfig>(&format!("pre_restore_prefix = {bad}")),
            "pre_restore_prefix",
            "{bad}"
        );
    }
    assert!(RestoreConfig::from_toml("pre_restore_prefix = \"safety.copy_1\"").is_ok());
}

#[test]
fn formatted_durations_read_back_exactly() {
    use std::time::Duration;
    for d in [
        Duration::ZERO,
        Duration::from_millis(1),
        Duration::from_millis(1500),
        Duration::from_nanos(1),
        Duration::from_nanos(1_234_567_891),
        Duration::from_secs(5400),
        Duration::from_secs(90061),
        MAX_WAIT,
        MAX_AGE,
    ] {
        let text = human_duration::format(d);
        assert_eq!(human_duration::parse(&text), Ok(d), "{text}");
    }
    assert_eq!(
        human_duration::format(std::time::Duration::from_secs(5400)),
        "1h30m"
    );
    assert_eq!(
        human_duration::format(std::time::Duration::from_millis(1500)),
        "1s500ms"
    );
}

/// Random TOML through every loader: a valid config or `InvalidInput`, never a panic.
#[test]
fn every_config_loader_survives_random_toml() {
    use ops_core::testkit::config_loader;
    const CASES: u32 = 300;
    config_loader::<AlertsConfig>(CASES);
    config_loader::<BackupVerifyConfig>(CASES);
    config_loader::<DeployVerifyConfig>(CASES);
    config_loader::<HealthCheckConfig>(CASES);
    config_loader::<IncidentConfig>(CASES);
    config_loader::<RestoreConfig>(CASES);
    config_loader::<RightSizeConfig>(CASES);
    config_loader::<RollbackConfig>(CASES);
    config_loader::<RolloutConfig>(CASES);
    config_loader::<RotateConfig>(CASES);
    config_loader::<AgeAuditConfig>(CASES);
    config_loader::<ShutdownConfig>(CASES);
    config_loader::<WeeklyReviewConfig>(CASES);
    config_loader::<ops_core::engine::ApprovalPolicy>(CASES);
    config_loader::<ops_core::schedule::ChangeCalendarConfig>(CASES);
}

/// The same property around each seed preset's sections, so the fields the presets use
/// (`direction`, `for`, escalation triggers, vertical steps, per-stage approvals, per-secret
/// ages, maintenance windows) are mutated too.
#[test]
fn every_preset_section_survives_random_toml() {
    use ops_core::testkit::config_loader_from;
    const CASES: u32 = 50;
    for name in ops_core::presets::Preset::names() {
        let p = ops_core::presets::Preset::load(name).unwrap();
        config_loader_from(&p.alerts, CASES);
        config_loader_from(&p.incident, CASES);
        config_loader_from(&p.right_size, CASES);
        config_loader_from(&p.rollout, CASES);
        config_loader_from(&p.shutdown, CASES);
        config_loader_from(&p.secret_ages, CASES);
        config_loader_from(&p.restore, CASES);
        config_loader_from(&p.backup, CASES);
        config_loader_from(&p.change, CASES);
    }
}
