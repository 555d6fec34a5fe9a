//! Cloud Monitoring distributions: buckets, merging across series, percentiles and means.

use serde::Deserialize;

/// A `Distribution` value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Distribution {
    /// Values recorded (int64 as a string).
    #[serde(default, with = "int64_string")]
    pub count: u64,
    /// Their mean.
    #[serde(default)]
    pub mean: f64,
    /// How the buckets are laid out.
    #[serde(default)]
    pub bucket_options: BucketOptions,
    /// Values per bucket (int64 strings); trailing zero buckets may be left out.
    #[serde(default)]
    pub bucket_counts: Vec<Int64>,
}

/// An int64 sent as a JSON string (the proto3 JSON mapping).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Int64(pub u64);

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        int64_string::deserialize(d).map(Int64)
    }
}

pub(crate) mod int64_string {
    use serde::Deserialize;

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            N(i64),
        }
        match Raw::deserialize(d)? {
            Raw::S(s) => s.parse::<i64>().map_err(serde::de::Error::custom),
            Raw::N(n) => Ok(n),
        }
        .map(|n| n.max(0) as u64)
    }
}

/// `BucketOptions`: one of three layouts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketOptions {
    /// `scale * growthFactor^i` bounds.
    #[serde(default)]
    pub exponential_buckets: Option<Exponential>,
    /// `offset + width * i` bounds.
    #[serde(default)]
    pub linear_buckets: Option<Linear>,
    /// Listed bounds.
    #[serde(default)]
    pub explicit_buckets: Option<Explicit>,
}

/// Exponential buckets.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exponential {
    /// Finite buckets.
    pub num_finite_buckets: u32,
    /// Growth factor (> 1).
    pub growth_factor: f64,
    /// First bound (> 0).
    pub scale: f64,
}

/// Linear buckets.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linear {
    /// Finite buckets.
    pub num_finite_buckets: u32,
    /// Width (> 0).
    pub width: f64,
    /// First bound.
    pub offset: f64,
}

/// Explicit bounds.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Explicit {
    /// Strictly increasing bounds.
    #[serde(default)]
    pub bounds: Vec<f64>,
}

/// One bucket with its bounds and how many values fell in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Inclusive lower bound (`-inf` for the underflow bucket).
    pub lower: f64,
    /// Exclusive upper bound (`+inf` for the overflow bucket).
    pub upper: f64,
    /// Values in it.
    pub count: u64,
}

impl BucketOptions {
    /// Bounds of bucket `i`: bucket 0 is the underflow, the last the overflow.
    fn bounds(&self, i: usize) -> (f64, f64) {
        let bound = |k: usize| -> Option<f64> {
            if let Some(e) = self.exponential_buckets {
                (k <= e.num_finite_buckets as usize)
                    .then(|| e.scale * e.growth_factor.powi(k as i32))
            } else if let Some(l) = self.linear_buckets {
                (k <= l.num_finite_buckets as usize).then_some(l.offset + l.width * k as f64)
            } else {
                self.explicit_buckets
                    .as_ref()
                    .and_then(|x| x.bounds.get(k).copied())
            }
        };
        let lower = if i == 0 {
            f64::NEG_INFINITY
        } else {
            bound(i - 1).unwrap_or(f64::INFINITY)
        };
        let upper = bound(i).unwrap_or(f64::INFINITY);
        (lower, upper)
    }
}

impl BucketOptions {
    /// The finite bounds of the layout, in order (`None` without a layout, or with more than
    /// the judge's bucket limit).
    pub fn finite_bounds(&self) -> Option<Vec<f64>> {
        let n = if let Some(e) = self.exponential_buckets {
            e.num_finite_buckets as usize + 1
        } else if let Some(l) = self.linear_buckets {
            l.num_finite_buckets as usize + 1
        } else {
            self.explicit_buckets.as_ref()?.bounds.len()
        };
        if n == 0 || n > ops_core::judge::MAX_BUCKETS {
            return None;
        }
        let bounds: Vec<f64> = (0..n).map(|i| self.bounds(i).1).collect();
        let increasing = bounds.windows(2).all(|w| w[0] < w[1]);
        (increasing && bounds.iter().all(|b| b.is_finite())).then_some(bounds)
    }
}

/// The distributions merged into one histogram, when they share one bucket layout (their
/// counts summed); `None` when there is none, or layouts differ, or counts do not fit it, or
/// the result is not a valid histogram (negative bounds, a total past 64 bits).
pub fn histogram(dists: &[Distribution]) -> Option<ops_core::contracts::Histogram> {
    let first = dists.first()?;
    let bounds_ms = first.bucket_options.finite_bounds()?;
    let mut counts = vec![0u64; bounds_ms.len() + 1];
    for d in dists {
        if d.bucket_options.finite_bounds().as_ref() != Some(&bounds_ms)
            || d.bucket_counts.len() > counts.len()
        {
            return None;
        }
        for (sum, c) in counts.iter_mut().zip(&d.bucket_counts) {
            *sum = sum.checked_add(c.0)?;
        }
    }
    // Only a histogram the judge accepts (bounds not negative, a total that fits in 64 bits).
    let h = ops_core::contracts::Histogram { bounds_ms, counts };
    h.check().is_ok().then_some(h)
}

impl Distribution {
    /// Its non-empty buckets with bounds.
    pub fn buckets(&self) -> Vec<Bucket> {
        self.bucket_counts
            .iter()
            .enumerate()
            .filter(|(_, c)| c.0 > 0)
            .map(|(i, c)| {
                let (lower, upper) = self.bucket_options.bounds(i);
                Bucket {
                    lower,
                    upper,
                    count: c.0,
                }
            })
            .collect()
    }
}

/// The `p`-th percentile (0 < p ≤ 100) of the values in `buckets` (from one or more
/// distributions), interpolating linearly inside the bucket it falls in. An open-ended bucket
/// answers with its finite bound.
pub fn percentile(buckets: &[Bucket], p: f64) -> Option<f64> {
    let mut sorted: Vec<Bucket> = buckets.iter().copied().filter(|b| b.count > 0).collect();
    sorted.sort_by(|a, b| a.lower.total_cmp(&b.lower));
    let total: u64 = sorted.iter().map(|b| b.count).sum();
    if total == 0 {
        return None;
    }
    let rank = (p / 100.0 * total as f64).max(f64::MIN_POSITIVE);
    let mut before = 0u64;
    for b in &sorted {
        if (before + b.count) as f64 >= rank {
            return Some(match (b.lower.is_finite(), b.upper.is_finite()) {
                (true, true) => {
                    b.lower + (b.upper - b.lower) * ((rank - before as f64) / b.count as f64)
                }
                (false, true) => b.upper,
                (true, false) => b.lower,
                (false, false) => 0.0,
            });
        }
        before += b.count;
    }
    sorted.last().map(|b| {
        if b.upper.is_finite() {
            b.upper
        } else {
            b.lower
        }
    })
}

/// The mean over several distributions, weighted by their counts.
pub fn mean(dists: &[Distribution]) -> Option<f64> {
    let total: u64 = dists.iter().map(|d| d.count).sum();
    (total > 0).then(|| dists.iter().map(|d| d.mean * d.count as f64).sum::<f64>() / total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(json: serde_json::Value) -> Distribution {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn exponential_bounds_and_percentiles() {
        // Bounds 1, 2, 4, 8: buckets (-inf,1) [1,2) [2,4) [4,8) [8,inf).
        let d = dist(serde_json::json!({
            "count": "100", "mean": 3.0,
            "bucketOptions": {"exponentialBuckets": {"numFiniteBuckets": 3, "growthFactor": 2, "scale": 1}},
            "bucketCounts": ["0", "50", "40", "10"]
        }));
        let b = d.buckets();
        assert_eq!(
            b[0],
            Bucket {
                lower: 1.0,
                upper: 2.0,
                count: 50
            }
        );
        assert_eq!(
            b[2],
            Bucket {
                lower: 4.0,
                upper: 8.0,
                count: 10
            }
        );
        assert_eq!(percentile(&b, 50.0), Some(2.0));
        assert_eq!(percentile(&b, 25.0), Some(1.5));
        assert_eq!(percentile(&b, 95.0), Some(6.0));
        assert_eq!(percentile(&b, 100.0), Some(8.0));
    }

    #[test]
    fn linear_explicit_and_open_buckets() {
        let lin = dist(serde_json::json!({
            "count": "10", "bucketOptions": {"linearBuckets": {"numFiniteBuckets": 2, "width": 10, "offset": 0}},
            "bucketCounts": ["0", "0", "0", "10"]
        }));
        // Everything in the overflow bucket [20, inf): the finite bound answers.
        assert_eq!(percentile(&lin.buckets(), 99.0), Some(20.0));
        let exp = dist(serde_json::json!({
            "count": "4", "bucketOptions": {"explicitBuckets": {"bounds": [100, 200]}},
            "bucketCounts": ["2", "2"]
        }));
        let b = exp.buckets();
        assert_eq!(b[0].lower, f64::NEG_INFINITY);
        assert_eq!(percentile(&b, 50.0), Some(100.0));
        assert_eq!(percentile(&b, 75.0), Some(150.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn mean_is_weighted() {
        let a = dist(serde_json::json!({"count": "1", "mean": 0.9}));
        let b = dist(serde_json::json!({"count": "3", "mean": 0.1}));
        assert!((mean(&[a, b]).unwrap() - 0.3).abs() < 1e-9);
        assert_eq!(mean(&[]), None);
    }

    proptest::proptest! {
        /// Any distributions a reply carries (any layout, any counts): one well-formed
        /// histogram or none, never a panic.
        #[test]
        fn any_distributions_merge_into_a_histogram_or_none(
            dists in proptest::collection::vec(
                (
                    0u8..3,
                    0u32..300,
                    proptest::num::f64::ANY,
                    proptest::num::f64::ANY,
                    proptest::collection::vec(proptest::num::f64::ANY, 0..8),
                    proptest::collection::vec(proptest::num::u64::ANY, 0..12),
                ),
                0..4,
            ),
        ) {
            let dists: Vec<Distribution> = dists
                .into_iter()
                .map(|(kind, n, a, b, bounds, counts)| Distribution {
                    count: 0,
                    mean: 0.0,
                    bucket_options: BucketOptions {
                        exponential_buckets: (kind == 0).then_some(Exponential {
                            num_finite_buckets: n,
                            growth_factor: a,
                            scale: b,
                        }),
                        linear_buckets: (kind == 1).then_some(Linear {
                            num_finite_buckets: n,
                            width: a,
                            offset: b,
                        }),
                        explicit_buckets: (kind == 2).then_some(Explicit { bounds }),
                    },
                    bucket_counts: counts.into_iter().map(Int64).collect(),
                })
                .collect();
            if let Some(h) = histogram(&dists) {
                proptest::prop_assert!(h.check().is_ok(), "{:?}", h);
            }
        }
    }
}
