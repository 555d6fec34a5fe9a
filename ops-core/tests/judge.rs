//! The canary judge's arithmetic, against values computed directly from the formulas (not in
//! log space, not through the judge's code), and its edges: no errors, no traffic, huge
//! counts, contradictory input.

use ops_core::ErrorKind;
use ops_core::judge::evidence::{Arm, RATE_RATIO_PRIOR, RateRatioEvidence, SampleRatioEvidence};
use ops_core::judge::{
    Decision, Histogram, Interval, JudgeConfig, RequestCounts, SequentialJudge, TestReading,
};

fn arm(exposure: u64, events: u64) -> Arm {
    Arm { exposure, events }
}

fn interval(c: (u64, u64), b: (u64, u64), share: f64) -> Interval {
    Interval {
        canary: RequestCounts {
            requests: c.0,
            errors: c.1,
            latency: None,
        },
        baseline: RequestCounts {
            requests: b.0,
            errors: b.1,
            latency: None,
        },
        canary_share: share,
    }
}

fn errors_only() -> JudgeConfig {
    JudgeConfig {
        latency_thresholds_ms: vec![],
        ..JudgeConfig::default()
    }
}

fn test<'a>(tests: &'a [TestReading], name: &str) -> &'a TestReading {
    tests
        .iter()
        .find(|t| t.test.starts_with(name))
        .unwrap_or_else(|| panic!("no test {name} in {tests:?}"))
}

/// The mixture likelihood ratio of the conditional binomial test, straight from its formula.
fn direct_rate_ratio(margin: f64, intervals: &[(Arm, Arm)]) -> f64 {
    let rho0 = 1.0 + margin;
    RATE_RATIO_PRIOR
        .iter()
        .map(|&(r, w)| {
            let lr: f64 = intervals
                .iter()
                .map(|(c, b)| {
                    let s = c.exposure as f64 / (c.exposure + b.exposure) as f64;
                    let t0 = rho0 * s / (rho0 * s + 1.0 - s);
                    let t1 = rho0 * r * s / (rho0 * r * s + 1.0 - s);
                    (t1 / t0).powi(c.events as i32)
                        * ((1.0 - t1) / (1.0 - t0)).powi(b.events as i32)
                })
                .product();
            w * lr
        })
        .sum()
}

#[test]
fn the_error_evidence_is_the_mixture_of_likelihood_ratios() {
    let looks = [
        (arm(100, 3), arm(100, 1)),
        (arm(50, 0), arm(950, 4)),
        (arm(250, 9), arm(750, 6)),
    ];
    for margin in [0.0, 0.2, 1.0] {
        let mut e = RateRatioEvidence::new(margin);
        for (i, (c, b)) in looks.iter().enumerate() {
            e.observe(*c, *b);
            let want = direct_rate_ratio(margin, &looks[..=i]);
            let got = e.log_evidence().exp();
            assert!(
                (got - want).abs() <= 1e-9 * want.max(1.0),
                "margin {margin}, look {i}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn a_hand_computed_look() {
    // Equal traffic, margin 0: θ₀ = 1/2 and θ(r) = r/(r+1). Two canary errors, none on the
    // baseline: LR_r = (2r/(r+1))², so for r = 2 it is 16/9. By hand: 0.25·1.2346 +
    // 0.25·1.44 + 0.2·1.7778 + 0.15·2.25 + 0.1·2.7778 + 0.05·3.3058 = 1.8048.
    let mut e = RateRatioEvidence::new(0.0);
    e.observe(arm(10, 2), arm(10, 0));
    let want: f64 = RATE_RATIO_PRIOR
        .iter()
        .map(|&(r, w)| w * (2.0 * r / (r + 1.0)).powi(2))
        .sum();
    assert!((e.log_evidence().exp() - want).abs() < 1e-12);
    assert!((want - 1.8048).abs() < 1e-4, "{want}");
}

#[test]
fn the_sample_ratio_evidence_is_the_mixture_of_binomial_ratios() {
    let mut e = SampleRatioEvidence::default();
    e.observe(30, 70, 0.25);
    let k = ops_core::judge::evidence::SAMPLE_RATIO_SHIFTS;
    let want: f64 = k
        .iter()
        .map(|kappa| {
            let odds = (0.25f64 / 0.75) * kappa.exp();
            let q = odds / (1.0 + odds);
            (q / 0.25).powi(30) * ((1.0 - q) / 0.75).powi(70) / k.len() as f64
        })
        .sum();
    assert!((e.log_evidence().exp() - want).abs() < 1e-9 * want);
}

#[test]
fn no_errors_no_traffic_and_one_empty_arm_carry_no_evidence() {
    let mut e = RateRatioEvidence::new(0.0);
    e.observe(arm(0, 0), arm(1000, 5));
    e.observe(arm(1000, 0), arm(0, 0));
    e.observe(arm(500, 0), arm(500, 0));
    assert_eq!(e.log_evidence(), 0.0, "the mixture of ratios of one is one");
    let mut s = SampleRatioEvidence::default();
    s.observe(0, 0, 0.25);
    s.observe(10, 10, 0.0);
    s.observe(10, 10, 1.0);
    assert_eq!(s.log_evidence(), 0.0);
}

#[test]
fn a_zero_error_baseline_still_lets_canary_errors_count() {
    let mut j = SequentialJudge::new(errors_only()).unwrap();
    let mut looks = 0;
    let decision = loop {
        looks += 1;
        let look = j.observe(&interval((250, 5), (750, 0), 0.25)).unwrap();
        if look.decision != Decision::Continue || looks > 20 {
            break look;
        }
    };
    assert_eq!(decision.decision, Decision::Fail, "{decision:?}");
    assert!(
        looks <= 3,
        "five errors a look against none aborts fast: {looks}"
    );
    assert!(decision.why.contains("errors: canary") && decision.why.ends_with("abort"));
}

#[test]
fn equal_error_rates_never_reject_and_a_stage_passes_once_it_has_enough_requests() {
    let mut j = SequentialJudge::new(errors_only()).unwrap();
    for _ in 0..60 {
        let look = j.observe(&interval((25, 1), (75, 3), 0.25)).unwrap();
        assert_eq!(look.decision, Decision::Continue, "{}", look.why);
        let errors = test(&look.tests, "errors");
        assert!(errors.log10_evidence <= 0.0, "{errors:?}");
    }
    let end = j.end_stage();
    assert_eq!(end.decision, Decision::Pass, "{}", end.why);
    assert_eq!(end.stage_canary_requests, 1500);
    // The next stage starts its count again: too few requests is inconclusive.
    j.observe(&interval((10, 0), (30, 1), 0.25)).unwrap();
    let end = j.end_stage();
    assert_eq!(end.decision, Decision::Inconclusive);
    assert!(end.why.contains("fewer than the 100"), "{}", end.why);
    assert!(end.decision.stops());
}

#[test]
fn a_canary_without_its_share_of_traffic_is_invalid() {
    let mut j = SequentialJudge::new(errors_only()).unwrap();
    let mut last = None;
    for _ in 0..10 {
        // The split says 25 %; the canary gets 2 %.
        last = Some(j.observe(&interval((20, 0), (980, 5), 0.25)).unwrap());
    }
    let look = last.unwrap();
    assert_eq!(look.decision, Decision::Invalid, "{}", look.why);
    assert!(look.why.contains("routing is broken"), "{}", look.why);
    // It stays invalid, even at the end of the stage.
    assert_eq!(j.end_stage().decision, Decision::Invalid);
}

#[test]
fn latency_is_compared_through_the_histograms_tails() {
    let bounds = vec![100.0, 250.0, 500.0, 1000.0, 2000.0];
    let histogram = |counts: Vec<u64>| {
        Some(Histogram {
            bounds_ms: bounds.clone(),
            counts,
        })
    };
    let mut j = SequentialJudge::new(JudgeConfig::default()).unwrap();
    let mut decision = Decision::Continue;
    for _ in 0..30 {
        let mut i = interval((100, 0), (300, 0), 0.25);
        // The canary: a fifth of its requests over 500 ms; the baseline: 2 %.
        i.canary.latency = histogram(vec![50, 20, 10, 15, 5, 0]);
        i.baseline.latency = histogram(vec![200, 80, 14, 5, 1, 0]);
        let look = j.observe(&i).unwrap();
        decision = look.decision;
        if decision == Decision::Fail {
            assert!(look.why.contains("latency>"), "{}", look.why);
            break;
        }
    }
    assert_eq!(decision, Decision::Fail);
}

#[test]
fn contradictory_counts_are_invalid_input_and_change_nothing() {
    let mut j = SequentialJudge::new(JudgeConfig::default()).unwrap();
    let bad = [
        interval((10, 11), (10, 0), 0.5),
        interval((10, 0), (10, 0), 1.5),
        interval((10, 0), (10, 0), f64::NAN),
    ];
    for i in &bad {
        let e = j.observe(i).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::InvalidInput { .. }), "{e}");
    }
    let mut i = interval((10, 0), (10, 0), 0.5);
    i.canary.latency = Some(Histogram {
        bounds_ms: vec![100.0, 50.0],
        counts: vec![1, 2, 3],
    });
    assert!(j.observe(&i).is_err(), "bounds not increasing");
    i.canary.latency = Some(Histogram {
        bounds_ms: vec![100.0],
        counts: vec![u64::MAX, 1],
    });
    assert!(j.observe(&i).is_err(), "counts overflowing");
    i.canary.latency = Some(Histogram {
        bounds_ms: vec![100.0],
        counts: vec![1, 1],
    });
    i.baseline.latency = Some(Histogram {
        bounds_ms: vec![200.0],
        counts: vec![1, 1],
    });
    assert!(j.observe(&i).is_err(), "different bounds");
    let look = j.end_stage();
    assert_eq!(look.number, 0, "nothing was counted");
    assert_eq!(look.decision, Decision::Inconclusive);
}

#[test]
fn huge_counts_give_numbers_not_nan() {
    let mut j = SequentialJudge::new(errors_only()).unwrap();
    let big = u64::MAX / 4;
    for (c, b) in [
        ((big, big / 2), (big, big / 3)),
        ((u64::MAX, 0), (1, 1)),
        ((1, 1), (u64::MAX, u64::MAX)),
        ((u64::MAX, u64::MAX), (u64::MAX, u64::MAX)),
    ] {
        let look = j.observe(&interval(c, b, 0.5)).unwrap();
        for t in &look.tests {
            assert!(!t.log10_evidence.is_nan(), "{t:?}");
        }
    }
}

#[test]
fn configs_out_of_range_name_their_field() {
    for (config, field) in [
        (
            JudgeConfig {
                alpha: 0.0,
                ..JudgeConfig::default()
            },
            "judge.alpha",
        ),
        (
            JudgeConfig {
                sample_ratio_alpha: f64::NAN,
                ..JudgeConfig::default()
            },
            "judge.sample_ratio_alpha",
        ),
        (
            JudgeConfig {
                error_margin: -0.1,
                ..JudgeConfig::default()
            },
            "judge.error_margin",
        ),
        (
            JudgeConfig {
                latency_thresholds_ms: vec![500.0, f64::INFINITY],
                ..JudgeConfig::default()
            },
            "judge.latency_thresholds_ms",
        ),
    ] {
        let e = SequentialJudge::new(config).unwrap_err();
        assert!(e.to_string().contains(field), "{e}");
    }
}

/// Found by the property test below: one arm 10¹⁶ times the other rounds a probability to
/// one, and `0 · ln(0/0)` was NaN evidence.
#[test]
fn an_arm_vastly_larger_than_the_other_gives_no_nan_evidence() {
    let mut j = SequentialJudge::new(JudgeConfig::default()).unwrap();
    for (canary, baseline) in [
        ((2_348_042_088_179_042_431, 0), (257, 0)),
        ((2_348_042_088_179_042_431, 5), (257, 3)),
        ((257, 3), (u64::MAX / 2, 7)),
    ] {
        let look = j.observe(&interval(canary, baseline, 0.0)).unwrap();
        for t in &look.tests {
            assert!(!t.log10_evidence.is_nan(), "{t:?}");
        }
    }
}

proptest::proptest! {
    /// Any counts: a look or a typed error, never a panic; evidence is never NaN.
    #[test]
    fn any_counts_give_a_look_or_a_typed_error(
        looks in proptest::collection::vec(
            (any_count(), any_count(), any_count(), any_count(), 0.0f64..=1.0,
             proptest::collection::vec(any_count(), 0..5)),
            1..12,
        ),
    ) {
        let mut j = SequentialJudge::new(JudgeConfig::default()).unwrap();
        for (cr, ce, br, be, share, buckets) in looks {
            let mut i = interval((cr, ce), (br, be), share);
            if !buckets.is_empty() {
                let h = Histogram {
                    bounds_ms: (1..buckets.len()).map(|k| k as f64 * 300.0).collect(),
                    counts: buckets,
                };
                i.canary.latency = Some(h.clone());
                i.baseline.latency = Some(h);
            }
            match j.observe(&i) {
                Ok(look) => {
                    for t in &look.tests {
                        proptest::prop_assert!(!t.log10_evidence.is_nan(), "{:?}", t);
                    }
                }
                Err(e) => proptest::prop_assert!(
                    matches!(e.kind(), ErrorKind::InvalidInput { .. }), "{}", e
                ),
            }
        }
    }
}

fn any_count() -> impl proptest::strategy::Strategy<Value = u64> {
    proptest::prop_oneof![0u64..1000, proptest::num::u64::ANY]
}

#[test]
fn the_guard_rail_evidence_is_the_mixture_of_one_sample_ratios() {
    use ops_core::judge::evidence::AboveLevelEvidence;
    let mut e = AboveLevelEvidence::new(0.05);
    e.observe(100, 6);
    let want: f64 = RATE_RATIO_PRIOR
        .iter()
        .map(|&(r, w)| {
            let p1 = (0.05 * r).min(0.525);
            w * (p1 / 0.05f64).powi(6) * ((1.0 - p1) / 0.95f64).powi(94)
        })
        .sum();
    assert!((e.log_evidence().exp() - want).abs() <= 1e-9 * want);
    // Six failures in a hundred at a 5 % level is no evidence to speak of.
    assert!(e.log_evidence().exp() < 10.0, "{}", e.log_evidence().exp());
    // Thirty in a hundred is.
    let mut bad = AboveLevelEvidence::new(0.05);
    bad.observe(100, 30);
    assert!(bad.log_evidence() > 1000f64.ln());
    // Counts that contradict themselves, or a level of 0 or 1, gather nothing.
    let mut odd = AboveLevelEvidence::new(1.0);
    odd.observe(10, 10);
    odd.observe(u64::MAX, u64::MAX);
    assert_eq!(odd.log_evidence(), 0.0);
}
