//! Exact money: an amount in nano-units (10⁻⁹) of a named currency.
//!
//! Nano-units are `google.type.Money`'s precision and BigQuery `NUMERIC`'s scale, so a cost read
//! from a billing export or a budget is held without rounding, and sums of thousands of lines
//! are exact (an `f64` sum of cents drifts). Every operation that could overflow is checked and
//! answers `InvalidInput`; amounts in different currencies never add.
//!
//! Bounds: an amount's magnitude is below 10²⁸ units ([`Money::MAX_UNITS_DIGITS`] digits), far
//! beyond any bill, and a decimal text is at most [`MAX_DECIMAL_TEXT`] characters.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

/// Nano-units in one unit.
const NANOS_PER_UNIT: i128 = 1_000_000_000;

/// The longest decimal text [`Money::parse`] reads.
pub const MAX_DECIMAL_TEXT: usize = 64;

/// An ISO 4217 currency code: three ASCII capital letters (`USD`, `EUR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// US dollars.
    pub const USD: Currency = Currency(*b"USD");

    /// `code` as a currency; anything but three ASCII letters is `InvalidInput` (lower case is
    /// accepted and upper-cased).
    pub fn parse(code: &str) -> Result<Self> {
        let bytes = code.trim().as_bytes();
        match bytes {
            [a, b, c] if bytes.iter().all(u8::is_ascii_alphabetic) => Ok(Currency([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
                c.to_ascii_uppercase(),
            ])),
            _ => Err(invalid(
                "currency",
                format!("{code:?} is not a three-letter ISO 4217 code"),
            )),
        }
    }

    /// The code.
    pub fn code(&self) -> &str {
        // Always three ASCII letters (checked in `parse`).
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Currency::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An exact amount of money in one currency.
///
/// Serialised as `{"currency": "USD", "amount": "12.345"}`; the amount may also be written as a
/// number in a config (`amount = 50`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    currency: Currency,
    nanos: i128,
}

fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::invalid_input("ops-core", "money", field, reason)
}

impl Money {
    /// The most digits of whole units an amount has.
    pub const MAX_UNITS_DIGITS: u32 = 28;
    const LIMIT: i128 = 10i128.pow(Self::MAX_UNITS_DIGITS) * NANOS_PER_UNIT;

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self { currency, nanos: 0 }
    }

    /// `nanos` nano-units of `currency`, if within the bounds.
    pub fn from_nanos(currency: Currency, nanos: i128) -> Result<Self> {
        if nanos.unsigned_abs() >= Self::LIMIT.unsigned_abs() {
            return Err(invalid(
                "amount",
                format!("beyond 10^{} units", Self::MAX_UNITS_DIGITS),
            ));
        }
        Ok(Self { currency, nanos })
    }

    /// `amount` (a decimal such as `12.5`, `-0.000001`, `1.5E-7`) in `currency`. Digits beyond
    /// the ninth decimal place are rounded half away from zero.
    pub fn parse(currency: Currency, amount: &str) -> Result<Self> {
        Self::from_nanos(currency, parse_nanos(amount)?)
    }

    /// A `google.type.Money`: `units` and `nanos` (the same sign, `|nanos| < 10⁹`).
    pub fn from_units_nanos(currency: &str, units: i64, nanos: i32) -> Result<Self> {
        let currency = Currency::parse(currency)?;
        let mixed = (units > 0 && nanos < 0) || (units < 0 && nanos > 0);
        if mixed || i128::from(nanos).abs() >= NANOS_PER_UNIT {
            return Err(invalid(
                "nanos",
                format!("{nanos} does not go with units {units}"),
            ));
        }
        Self::from_nanos(
            currency,
            i128::from(units) * NANOS_PER_UNIT + i128::from(nanos),
        )
    }

    /// As a `google.type.Money`: `(units, nanos)`; `InvalidInput` beyond `i64` units.
    pub fn to_units_nanos(&self) -> Result<(i64, i32)> {
        let units = i64::try_from(self.nanos / NANOS_PER_UNIT)
            .map_err(|_| invalid("amount", "beyond i64 units"))?;
        // |remainder| < 10⁹ fits an i32.
        let nanos = i32::try_from(self.nanos % NANOS_PER_UNIT).unwrap_or(0);
        Ok((units, nanos))
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount in nano-units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// Zero?
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    fn same_currency(&self, other: &Money) -> Result<()> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(invalid(
                "currency",
                format!(
                    "{} and {} do not add: amounts in different currencies",
                    self.currency, other.currency
                ),
            ))
        }
    }

    /// `self + other`; different currencies or overflow are `InvalidInput`.
    pub fn checked_add(&self, other: &Money) -> Result<Money> {
        self.same_currency(other)?;
        let sum = self
            .nanos
            .checked_add(other.nanos)
            .ok_or_else(|| invalid("amount", "sum overflows"))?;
        Self::from_nanos(self.currency, sum)
    }

    /// `self - other`; different currencies or overflow are `InvalidInput`.
    pub fn checked_sub(&self, other: &Money) -> Result<Money> {
        self.same_currency(other)?;
        let negated = Money::from_nanos(other.currency, -other.nanos)?;
        self.checked_add(&negated)
    }

    /// The sum of `amounts`, all in `currency`.
    pub fn sum<'a>(
        currency: Currency,
        amounts: impl IntoIterator<Item = &'a Money>,
    ) -> Result<Money> {
        amounts
            .into_iter()
            .try_fold(Money::zero(currency), |acc, m| acc.checked_add(m))
    }

    /// `self × numerator / denominator`, rounded half away from zero (a month-end projection:
    /// month-to-date × days in month / days elapsed).
    pub fn scaled(&self, numerator: i128, denominator: i128) -> Result<Money> {
        if denominator == 0 {
            return Err(invalid("denominator", "must not be zero"));
        }
        let product = self
            .nanos
            .checked_mul(numerator)
            .ok_or_else(|| invalid("amount", "product overflows"))?;
        Self::from_nanos(self.currency, div_round(product, denominator))
    }

    /// `self × factor` for a decimal factor (`2`, `1.5`), exact up to nine decimal places of
    /// the factor, rounded half away from zero.
    pub fn times(&self, factor: f64) -> Result<Money> {
        if !factor.is_finite() {
            return Err(invalid("factor", "must be a finite number"));
        }
        // The shortest decimal that reads back as `factor`: 1.1 is 1.1, not 1.10000000000000009.
        let factor_nanos = parse_nanos(&format!("{factor}"))?;
        self.scaled(factor_nanos, NANOS_PER_UNIT)
    }

    /// `self / whole` as a percentage (`None` when `whole` is zero or in another currency).
    pub fn percent_of(&self, whole: &Money) -> Option<f64> {
        (whole.currency == self.currency && whole.nanos != 0)
            .then(|| self.nanos as f64 * 100.0 / whole.nanos as f64)
    }

    /// The median of `amounts` (all in one currency; the mean of the middle two for an even
    /// count, rounded half away from zero); `None` for none.
    pub fn median(amounts: &[Money]) -> Option<Money> {
        let mut sorted: Vec<Money> = amounts.to_vec();
        sorted.sort_by_key(|a| a.nanos);
        let n = sorted.len();
        if n == 0 || sorted.iter().any(|m| m.currency != sorted[0].currency) {
            return None;
        }
        if n % 2 == 1 {
            return Some(sorted[n / 2]);
        }
        let (a, b) = (sorted[n / 2 - 1].nanos, sorted[n / 2].nanos);
        // Both are below the limit, so their sum cannot overflow an i128.
        Some(Money {
            currency: sorted[0].currency,
            nanos: div_round(a + b, 2),
        })
    }

    /// The exact decimal amount (`12.345`, `-0.5`, `3`), without the currency.
    pub fn amount_text(&self) -> String {
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.unsigned_abs();
        let units = abs / NANOS_PER_UNIT as u128;
        let frac = abs % NANOS_PER_UNIT as u128;
        if frac == 0 {
            return format!("{sign}{units}");
        }
        let digits = format!("{frac:09}");
        format!("{sign}{units}.{}", digits.trim_end_matches('0'))
    }

    /// Compares two amounts of one currency (`None` across currencies).
    pub fn compare(&self, other: &Money) -> Option<Ordering> {
        (self.currency == other.currency).then(|| self.nanos.cmp(&other.nanos))
    }
}

/// Rounds `n / d` half away from zero (`d != 0`).
fn div_round(n: i128, d: i128) -> i128 {
    let q = n / d;
    let r = n % d;
    // |2r| ≥ |d| means round away from zero; compare without doubling (no overflow).
    let r_abs = r.unsigned_abs();
    let d_abs = d.unsigned_abs();
    if r_abs >= d_abs - r_abs {
        if (n < 0) == (d < 0) { q + 1 } else { q - 1 }
    } else {
        q
    }
}

/// A decimal text as nano-units: `[+-]digits[.digits][e[+-]digits]`, rounded half away from
/// zero at the ninth decimal place.
fn parse_nanos(text: &str) -> Result<i128> {
    let bad = |why: &str| invalid("amount", format!("{text:?}: {why}"));
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_DECIMAL_TEXT {
        return Err(bad("not a decimal of 1 to 64 characters"));
    }
    let (negative, rest) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => {
            let e: i32 = rest[i + 1..].parse().map_err(|_| bad("bad exponent"))?;
            (&rest[..i], e)
        }
        None => (rest, 0),
    };
    let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !all_digits(whole) || !all_digits(frac) {
        return Err(bad("not a decimal number"));
    }
    // The digits as one integer, and the power of ten it is scaled by.
    let digits: String = format!("{whole}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0);
    }
    // value = digits × 10^(exponent − frac digits); in nanos: digits × 10^shift. The text is
    // at most 64 characters, so these i64 sums cannot overflow.
    let shift = i64::from(exponent) - frac.len() as i64 + 9;
    let too_big = || bad("beyond 10^28 units");
    let magnitude: i128 = if shift >= 0 {
        if digits.len() as i64 + shift > 38 {
            return Err(too_big());
        }
        let base: i128 = digits.parse().map_err(|_| too_big())?;
        // shift ≤ 38 here.
        base.checked_mul(10i128.pow(u32::try_from(shift).map_err(|_| too_big())?))
            .ok_or_else(too_big)?
    } else {
        // Drop digits below a nano-unit, rounding half away from zero on the first dropped one.
        let drop = usize::try_from(shift.unsigned_abs()).unwrap_or(usize::MAX);
        if drop > digits.len() {
            0
        } else {
            let (kept, dropped) = digits.split_at(digits.len() - drop);
            if kept.len() > 38 {
                return Err(too_big());
            }
            let base: i128 = if kept.is_empty() {
                0
            } else {
                kept.parse().map_err(|_| too_big())?
            };
            let up = dropped.as_bytes().first().is_some_and(|d| *d >= b'5');
            base + i128::from(up)
        }
    };
    Ok(if negative { -magnitude } else { magnitude })
}

impl fmt::Display for Money {
    /// `12.35 USD`: rounded to cents for people; [`Money::amount_text`] is exact.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cents = div_round(self.nanos, NANOS_PER_UNIT / 100);
        let sign = if cents < 0 { "-" } else { "" };
        let abs = cents.unsigned_abs();
        write!(f, "{sign}{}.{:02} {}", abs / 100, abs % 100, self.currency)
    }
}

#[derive(Serialize, Deserialize)]
struct MoneyWire {
    currency: Currency,
    amount: AmountText,
}

/// An amount written as a decimal string or a number.
struct AmountText(String);

impl Serialize for AmountText {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AmountText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Whole(i64),
            Number(f64),
        }
        Ok(AmountText(match Either::deserialize(d)? {
            Either::Text(t) => t,
            Either::Whole(n) => n.to_string(),
            Either::Number(n) => format!("{n}"),
        }))
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        MoneyWire {
            currency: self.currency,
            amount: AmountText(self.amount_text()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let wire = MoneyWire::deserialize(d)?;
        Money::parse(wire.currency, &wire.amount.0).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(text: &str) -> Money {
        Money::parse(Currency::USD, text).unwrap()
    }

    #[test]
    fn decimals_read_exactly() {
        assert_eq!(usd("12.5").nanos(), 12_500_000_000);
        assert_eq!(usd("-0.000000001").nanos(), -1);
        assert_eq!(usd("1.5E-7").nanos(), 150);
        assert_eq!(usd("1e3").nanos(), 1_000 * NANOS_PER_UNIT);
        assert_eq!(usd(".25").amount_text(), "0.25");
        assert_eq!(usd("0.0000000015").nanos(), 2, "half away from zero");
        assert_eq!(usd("-0.0000000015").nanos(), -2);
        assert_eq!(usd("0.30000000000000004").amount_text(), "0.3");
        for bad in [
            "",
            "-",
            ".",
            "1.2.3",
            "1e",
            "abc",
            "1,5",
            "NaN",
            "1e99999999999",
        ] {
            assert!(Money::parse(Currency::USD, bad).is_err(), "{bad}");
        }
        assert!(
            Money::parse(Currency::USD, "1e30").is_err(),
            "beyond the bound"
        );
    }

    #[test]
    fn a_tenth_added_ten_times_is_one_exactly() {
        let tenth = usd("0.1");
        let total = Money::sum(Currency::USD, &[tenth; 10]).unwrap();
        assert_eq!(total, usd("1"));
        let float: f64 = [0.1f64; 10].iter().sum();
        assert_ne!(float, 1.0, "what an f64 sum gives instead");
    }

    #[test]
    fn currencies_never_mix() {
        let eur = Money::parse(Currency::parse("eur").unwrap(), "1").unwrap();
        assert_eq!(eur.currency().code(), "EUR");
        let err = usd("1").checked_add(&eur).unwrap_err();
        assert!(err.to_string().contains("different currencies"), "{err}");
        assert_eq!(usd("1").compare(&eur), None);
        assert!(Currency::parse("US").is_err() && Currency::parse("US$").is_err());
    }

    #[test]
    fn google_money_round_trips() {
        let m = Money::from_units_nanos("USD", -3, -500_000_000).unwrap();
        assert_eq!(m.amount_text(), "-3.5");
        assert_eq!(m.to_units_nanos().unwrap(), (-3, -500_000_000));
        assert!(Money::from_units_nanos("USD", 1, -1).is_err());
        assert!(Money::from_units_nanos("USD", 1, 1_000_000_000).is_err());
    }

    #[test]
    fn projection_median_and_display() {
        let mtd = usd("310");
        assert_eq!(mtd.scaled(30, 31).unwrap(), usd("300"));
        assert!(mtd.scaled(1, 0).is_err());
        assert_eq!(usd("25").times(2.0).unwrap(), usd("50"));
        assert_eq!(usd("10").times(1.1).unwrap(), usd("11"));
        assert!(usd("1").times(f64::NAN).is_err());
        let days = [usd("20"), usd("30"), usd("25"), usd("100")];
        assert_eq!(Money::median(&days), Some(usd("27.5")));
        assert_eq!(Money::median(&days[..3]), Some(usd("25")));
        assert_eq!(Money::median(&[]), None);
        assert_eq!(usd("12.345").to_string(), "12.35 USD");
        assert_eq!(usd("-0.004").to_string(), "0.00 USD");
        assert_eq!(usd("25").percent_of(&usd("200")), Some(12.5));
        let json = serde_json::to_string(&usd("1.25")).unwrap();
        assert_eq!(json, r#"{"currency":"USD","amount":"1.25"}"#);
        let back: Money = serde_json::from_str(r#"{"currency":"USD","amount":50}"#).unwrap();
        assert_eq!(back, usd("50"));
        assert!(serde_json::from_str::<Money>(r#"{"currency":"USD","amount":"x"}"#).is_err());
    }

    proptest! {
        #[test]
        fn any_text_is_an_amount_or_a_typed_error(text in ".{0,70}") {
            if let Err(e) = Money::parse(Currency::USD, &text) {
                let typed = matches!(e.kind(), crate::ErrorKind::InvalidInput { .. });
                prop_assert!(typed, "{}", e);
            }
        }

        #[test]
        fn exact_text_reads_back(nanos in -(10i128.pow(37))..10i128.pow(37)) {
            let m = Money::from_nanos(Currency::USD, nanos).unwrap();
            prop_assert_eq!(Money::parse(Currency::USD, &m.amount_text()).unwrap(), m);
        }

        #[test]
        fn sums_are_exact_or_refused(a in any::<i128>(), b in any::<i128>()) {
            let (Ok(x), Ok(y)) = (Money::from_nanos(Currency::USD, a), Money::from_nanos(Currency::USD, b)) else {
                return Ok(());
            };
            match x.checked_add(&y) {
                Ok(s) => prop_assert_eq!(s.nanos(), a + b),
                Err(_) => prop_assert!((a + b).unsigned_abs() >= Money::LIMIT.unsigned_abs()),
            }
            // Never panics.
            let _ = x.scaled(b, a);
            let _ = x.times(f64::from_bits(b as u64));
        }

        #[test]
        fn scaling_rounds_to_the_nearest_nano(n in -10i128.pow(20)..10i128.pow(20), num in 0i128..1000, den in 1i128..1000) {
            let m = Money::from_nanos(Currency::USD, n).unwrap();
            let s = m.scaled(num, den).unwrap().nanos();
            // |s·den − n·num| ≤ den/2
            prop_assert!((s * den - n * num).abs() * 2 <= den);
        }
    }
}
