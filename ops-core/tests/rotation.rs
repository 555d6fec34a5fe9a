//! The on-call rotation: turns in order at each hand-off (local time, DST included),
//! overrides, business hours as the seeds define them, and configs checked field by field.

use chrono::{DateTime, Datelike, Timelike, Utc};
use ops_core::ErrorKind;
use ops_core::calendar::*;
use proptest::prelude::*;

fn config() -> RotationConfig {
    RotationConfig {
        people: vec!["alice".into(), "bob".into(), "carol".into()],
        hand_off: "0 9 * * MON".into(),
        time_zone: "Europe/Berlin".into(),
        // Monday 2 March 2026, 09:00 Berlin (CET).
        starts: "2026-03-02T08:00:00Z".parse().unwrap(),
        // The seeds: business hours Monday 09:00 to Friday 17:00.
        business_hours: Some(WindowConfig {
            opens: "0 9 * * MON".into(),
            time_zone: "Europe/Berlin".into(),
            lasts: std::time::Duration::from_secs(104 * 3600),
        }),
        overrides: Vec::new(),
    }
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[test]
fn turns_pass_in_order_at_nine_local_time_across_dst() {
    let r = Rotation::new(config()).unwrap();
    let s = r.shift_at(at("2026-03-02T08:00:00Z")).unwrap();
    assert_eq!(
        (s.primary.as_str(), s.secondary.as_deref()),
        ("alice", Some("bob"))
    );
    assert!(s.business_hours);
    // Sunday night of the first week: still alice, outside business hours.
    let s = r.shift_at(at("2026-03-08T22:00:00Z")).unwrap();
    assert_eq!(s.primary, "alice");
    assert!(!s.business_hours);
    assert_eq!(s.until, at("2026-03-09T08:00:00Z"));
    // Friday 17:00 local ends business hours.
    assert!(
        r.shift_at(at("2026-03-06T15:59:00Z"))
            .unwrap()
            .business_hours
    );
    assert!(
        !r.shift_at(at("2026-03-06T16:00:00Z"))
            .unwrap()
            .business_hours
    );
    // Berlin moves to CEST on 29 March: the hand-off on 30 March is at 07:00 UTC.
    let before = r.shift_at(at("2026-03-30T06:59:59Z")).unwrap();
    let after = r.shift_at(at("2026-03-30T07:00:00Z")).unwrap();
    assert_eq!(
        before.primary, "alice",
        "weeks 1-4: alice, bob, carol, alice"
    );
    assert_eq!(after.primary, "bob");
    assert_eq!(after.from, at("2026-03-30T07:00:00Z"));
}

#[test]
fn an_override_replaces_the_scheduled_person_for_its_time_only() {
    let mut c = config();
    c.overrides.push(Override {
        person: "dave".into(),
        from: at("2026-03-04T00:00:00Z"),
        until: at("2026-03-05T00:00:00Z"),
        reason: "alice at a wedding".into(),
    });
    let r = Rotation::new(c).unwrap();
    let s = r.shift_at(at("2026-03-04T12:00:00Z")).unwrap();
    assert_eq!(s.primary, "dave");
    assert_eq!(s.secondary.as_deref(), Some("bob"));
    assert_eq!(
        s.overridden.as_deref(),
        Some("alice at a wedding (instead of alice)")
    );
    assert_eq!(
        (s.from, s.until),
        (at("2026-03-04T00:00:00Z"), at("2026-03-05T00:00:00Z"))
    );
    assert_eq!(
        r.shift_at(at("2026-03-05T00:00:00Z")).unwrap().primary,
        "alice"
    );
}

#[test]
fn bad_configs_name_their_field() {
    type Mutation = Box<dyn Fn(&mut RotationConfig)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (Box::new(|c| c.people.clear()), "people"),
        (Box::new(|c| c.people.push("alice".into())), "people[3]"),
        (Box::new(|c| c.people[1] = " ".into()), "people[1]"),
        (Box::new(|c| c.hand_off = "every monday".into()), "hand_off"),
        (Box::new(|c| c.time_zone = "Berlin".into()), "time_zone"),
        (
            Box::new(|c| {
                c.overrides.push(Override {
                    person: "dave".into(),
                    from: at("2026-03-05T00:00:00Z"),
                    until: at("2026-03-04T00:00:00Z"),
                    reason: "x".into(),
                })
            }),
            "overrides[0].until",
        ),
    ];
    for (mutate, field) in cases {
        let mut c = config();
        mutate(&mut c);
        let e = Rotation::new(c).unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::InvalidInput { field: f, .. } if f == field),
            "{field}: {e}"
        );
    }
    let r = Rotation::new(config()).unwrap();
    let e = r.shift_at(at("2026-03-01T00:00:00Z")).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidInput { field, .. } if field == "at"));
    // Too many hand-offs since the start is an error, not an endless walk.
    let mut c = config();
    c.hand_off = "0 * * * *".into();
    let e = Rotation::new(c)
        .unwrap()
        .shift_at(at("2027-06-01T00:00:00Z"))
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidInput { field, .. } if field == "starts"));
}

#[test]
fn the_rotation_loads_from_toml_and_random_toml_never_panics() {
    let c: RotationConfig = toml::from_str(
        r#"
people = ["alice", "bob"]
hand_off = "0 9 * * MON"
time_zone = "Europe/Berlin"
starts = "2026-03-02T08:00:00Z"
business_hours = { opens = "0 9 * * MON", time_zone = "Europe/Berlin", lasts = "104h" }
"#,
    )
    .unwrap();
    assert!(Rotation::new(c.clone()).is_ok());
    ops_core::testkit::config_loader_from(&c, 200);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The shift contains the instant, its person is the one whose turn it is, and the next
    /// shift (at `until`) is the next person's.
    #[test]
    fn shifts_tile_time_in_turn(secs in 0i64..(3 * 365 * 86_400), n in 1usize..5) {
        let mut c = config();
        c.people = (0..n).map(|i| format!("p{i}")).collect();
        let r = Rotation::new(c.clone()).unwrap();
        let t = c.starts + chrono::Duration::seconds(secs);
        let s = r.shift_at(t).unwrap();
        prop_assert!(s.from <= t && t < s.until);
        let local = s.until.with_timezone(&chrono_tz::Europe::Berlin);
        prop_assert_eq!((local.weekday(), local.hour(), local.minute()), (chrono::Weekday::Mon, 9, 0));
        let next = r.shift_at(s.until).unwrap();
        prop_assert_eq!(next.from, s.until);
        let i = c.people.iter().position(|p| *p == s.primary).unwrap();
        prop_assert_eq!(&next.primary, &c.people[(i + 1) % n]);
        prop_assert_eq!(s.secondary.is_none(), n == 1);
        // Weeks since the start decide whose turn it is.
        let weeks = ((s.from - c.starts).num_hours() + 12) / (7 * 24);
        prop_assert_eq!(&s.primary, &c.people[weeks as usize % n]);
    }
}
