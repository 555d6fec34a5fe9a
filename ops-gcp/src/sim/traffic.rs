//! Random traffic for the simulator ([`super::GcpSimBuilder::random_traffic`]): instead of
//! the expected number of requests and errors, each revision serves, in every whole second, a
//! Poisson number of requests of which a binomial number fail. Every second's draw comes from
//! the seed, the revision and the second alone, so any window asked twice, or split in two,
//! gives the same counts — as a real metrics backend does — and a seeded run repeats exactly.

/// Seeded, per-second request draws.
#[derive(Debug, Clone, Copy)]
pub(super) struct RandomTraffic {
    pub(super) seed: u64,
}

impl RandomTraffic {
    /// Requests and failed requests of `revision` in the second starting at unix time
    /// `second`, at `rate` requests per second failing with probability `error_ratio`.
    pub(super) fn second(
        &self,
        revision: &str,
        second: i64,
        rate: f64,
        error_ratio: f64,
    ) -> (u64, u64) {
        let key = revision.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let mut rng = fastrand::Rng::with_seed(mix(self.seed ^ mix(key ^ second as u64)));
        let requests = poisson(&mut rng, rate);
        (requests, binomial(&mut rng, requests, error_ratio))
    }
}

/// SplitMix64's finaliser: nearby inputs give unrelated seeds.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut fastrand::Rng) -> f64 {
    let u = rng.f64().max(f64::MIN_POSITIVE);
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * rng.f64()).cos()
}

/// Poisson(λ): exact (Knuth) up to λ = 30, the normal approximation above.
fn poisson(rng: &mut fastrand::Rng, lambda: f64) -> u64 {
    if !(lambda.is_finite() && lambda > 0.0) {
        return 0;
    }
    if lambda > 30.0 {
        return (lambda + lambda.sqrt() * normal(rng)).round().max(0.0) as u64;
    }
    let limit = (-lambda).exp();
    let (mut k, mut p) = (0u64, rng.f64());
    while p > limit {
        k += 1;
        p *= rng.f64();
    }
    k
}

/// Binomial(n, p): exact up to n = 200, the normal approximation above.
fn binomial(rng: &mut fastrand::Rng, n: u64, p: f64) -> u64 {
    let p = if p.is_finite() {
        p.clamp(0.0, 1.0)
    } else {
        0.0
    };
    if n <= 200 {
        return (0..n).filter(|_| rng.f64() < p).count() as u64;
    }
    let (n_f, spread) = (n as f64, (n as f64 * p * (1.0 - p)).sqrt());
    (n_f * p + spread * normal(rng)).round().clamp(0.0, n_f) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_draws_the_same_counts_every_time_and_the_rates_hold_on_average() {
        let traffic = RandomTraffic { seed: 7 };
        assert_eq!(
            traffic.second("svc/revisions/a", 100, 20.0, 0.1),
            traffic.second("svc/revisions/a", 100, 20.0, 0.1)
        );
        let (mut requests, mut errors) = (0u64, 0u64);
        for s in 0..10_000 {
            let (r, e) = traffic.second("svc/revisions/a", s, 20.0, 0.1);
            assert!(e <= r);
            requests += r;
            errors += e;
        }
        // 200,000 expected, sd ≈ 450; errors 10 % of them, sd ≈ 134.
        assert!((198_000..=202_000).contains(&requests), "{requests}");
        let ratio = errors as f64 / requests as f64;
        assert!((0.097..=0.103).contains(&ratio), "{ratio}");
        assert_ne!(
            traffic.second("svc/revisions/a", 5, 20.0, 0.1),
            traffic.second("svc/revisions/b", 5, 20.0, 0.1),
            "revisions draw apart"
        );
    }

    #[test]
    fn no_rate_serves_nothing_and_odd_inputs_do_not_panic() {
        let traffic = RandomTraffic { seed: 1 };
        assert_eq!(traffic.second("r", 0, 0.0, 0.5), (0, 0));
        assert_eq!(traffic.second("r", 0, f64::NAN, 0.5), (0, 0));
        let (r, e) = traffic.second("r", i64::MIN, 1e6, f64::INFINITY);
        assert!(r > 990_000 && e == 0, "{r} {e}");
        let (r, e) = traffic.second("r", i64::MAX, 500.0, 1.0);
        assert_eq!(e, r);
    }
}
