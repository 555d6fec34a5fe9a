//! Serde for `std::time::Duration`, in the two forms `ops` writes: [`human`] text for configs
//! people write (`"1h30m"`), [`secs`] fractional seconds for reports and journals (`1.5`).

/// Serde for durations written for people: `"500ms"`, `"30s"`, `"5m"`, `"1h30m"`, `"7d"`, or a
/// number of seconds. Negative and malformed values, and anything longer than
/// [`MAX_AGE`](super::MAX_AGE) (100 years), are rejected; each config field then applies its own
/// bound (most are at most [`MAX_WAIT`](super::MAX_WAIT), 366 days).
pub mod human {
    use std::time::Duration;

    use super::super::MAX_AGE;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Parses `"1h30m"`-style text.
    ///
    /// ```
    /// use ops_core::config::human_duration::parse;
    /// assert_eq!(parse("1h30m").unwrap().as_secs(), 5400);
    /// assert_eq!(parse("250ms").unwrap().as_millis(), 250);
    /// assert!(parse("-5m").is_err() && parse("5 parsecs").is_err() && parse("").is_err());
    /// assert!(parse("10000000000000000000s10000000000000000000s").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Duration, String> {
        let t = text.trim();
        if t.starts_with('-') {
            return Err(format!("{t:?} is negative"));
        }
        if t.is_empty() {
            return Err("empty duration".into());
        }
        let mut total = Duration::ZERO;
        let mut rest = t;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit() && c != '.')
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!("{t:?} is not a duration like 30s, 5m, 1h30m, 7d"));
            }
            let number = &rest[..digits];
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit_nanos: u64 = match &rest[..unit_len] {
                "ms" => 1_000_000,
                "s" | "" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                "d" => 86_400_000_000_000,
                "w" => 604_800_000_000_000,
                other => {
                    return Err(format!(
                        "{t:?}: unknown unit {other:?} (use ms, s, m, h, d, w)"
                    ));
                }
            };
            rest = &rest[unit_len..];
            let part = part_duration(number, unit_nanos).ok_or_else(|| too_long(t))?;
            let part = part.map_err(|()| format!("{t:?}: bad number {number:?}"))?;
            total = total
                .checked_add(part)
                .filter(|d| *d <= MAX_AGE)
                .ok_or_else(|| too_long(t))?;
        }
        Ok(total)
    }

    /// `number` units of `unit_nanos`: exact for whole numbers, rounded to the nanosecond for
    /// fractions. `None` when it is beyond [`MAX_AGE`], `Some(Err)` when it is not a number.
    fn part_duration(number: &str, unit_nanos: u64) -> Option<Result<Duration, ()>> {
        let max_nanos = MAX_AGE.as_nanos();
        if !number.contains('.') {
            // Leading zeros aside, more than 30 digits is beyond any bound.
            let digits = number.trim_start_matches('0');
            if digits.len() > 30 {
                return None;
            }
            let n: u128 = if digits.is_empty() {
                0
            } else {
                digits.parse().ok()?
            };
            let nanos = n.checked_mul(u128::from(unit_nanos))?;
            return (nanos <= max_nanos).then(|| Ok(nanos_to_duration(nanos)));
        }
        let n: f64 = match number.parse() {
            Ok(n) => n,
            Err(_) => return Some(Err(())),
        };
        let nanos = (n * unit_nanos as f64).round();
        if !nanos.is_finite() || nanos > max_nanos as f64 {
            return None;
        }
        // In range: below 2^62, so the cast is exact enough and cannot wrap.
        Some(Ok(nanos_to_duration(nanos as u128)))
    }

    fn nanos_to_duration(nanos: u128) -> Duration {
        let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
        // The remainder is below 10^9, so it fits in u32.
        Duration::new(secs, (nanos % 1_000_000_000) as u32)
    }

    fn too_long(t: &str) -> String {
        format!("{t:?} is longer than the limit of {}", format(MAX_AGE))
    }

    fn from_secs(n: f64) -> Result<Duration, String> {
        if n.is_nan() || n < 0.0 {
            return Err(format!("{n} is negative or not a number"));
        }
        match Duration::try_from_secs_f64(n) {
            Ok(d) if d <= MAX_AGE => Ok(d),
            _ => Err(too_long(&n.to_string())),
        }
    }

    /// Writes the shortest exact form (`"90m"` → `"1h30m"`, `"1500ms"` → `"1s500ms"`); what it
    /// writes, [`parse`] reads back to the same duration.
    pub fn format(d: Duration) -> String {
        if d.is_zero() {
            return "0s".into();
        }
        let mut out = String::new();
        let mut s = d.as_secs();
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
            if s >= size {
                out.push_str(&format!("{}{unit}", s / size));
                s %= size;
            }
        }
        let nanos = d.subsec_nanos();
        if nanos.is_multiple_of(1_000_000) {
            if nanos > 0 {
                out.push_str(&format!("{}ms", nanos / 1_000_000));
            }
        } else {
            // Below a millisecond: fractional milliseconds, exact to the nanosecond.
            let ms = format!("{}.{:06}", nanos / 1_000_000, nanos % 1_000_000);
            out.push_str(ms.trim_end_matches('0'));
            out.push_str("ms");
        }
        out
    }

    /// Serializes as text.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    /// Deserializes from text or a number of seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Secs(f64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) => parse(&t).map_err(serde::de::Error::custom),
            Raw::Secs(n) => from_secs(n).map_err(serde::de::Error::custom),
        }
    }

    /// The same for an optional duration (`#[serde(default, with = "human_duration::option")]`).
    pub mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        /// Serializes as text, or nothing.
        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        /// Deserializes text or seconds, or nothing.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            #[derive(Deserialize)]
            struct Wrap(#[serde(deserialize_with = "super::deserialize")] Duration);
            Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
        }
    }
}

/// Serde for a duration as fractional seconds (`1.5`), the form reports and journals use.
pub mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as seconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    /// Deserializes from seconds; rejects negative, NaN and infinite values.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(|_| {
            serde::de::Error::custom(format!("not a valid duration in seconds: {secs}"))
        })
    }

    /// The same for an optional duration (`null` for none).
    pub mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        /// Serializes as seconds, or nothing.
        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_some(&d.as_secs_f64()),
                None => s.serialize_none(),
            }
        }

        /// Deserializes seconds, or nothing; rejects negative, NaN and infinite values.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            Option::<f64>::deserialize(d)?
                .map(|secs| Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}
