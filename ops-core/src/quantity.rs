//! Memory quantities as Kubernetes and Cloud Run write them (`256Mi`, `1Gi`, `512M`, `1e9`, `134217728`),
//! read to bytes and written back in binary units, with checked arithmetic.

/// The bytes `q` means; `None` for anything that is not a memory quantity, or more than
/// `u64::MAX` bytes. Fractions are kept to the byte (`1.5Gi`).
pub fn bytes_of(q: &str) -> Option<u64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let scale: u64 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        _ => {
            // An exponent: `1e9`, `5E6`.
            let (_, exp) = suffix.split_once(['e', 'E'])?;
            let exp: u32 = exp.parse().ok().filter(|e| *e <= 19)?;
            10u64.checked_pow(exp)?
        }
    };
    let (whole, frac) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut bytes = whole.checked_mul(scale)?;
    if !frac.is_empty() {
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let f: u64 = frac.parse().ok()?;
        let denominator = 10u64.pow(frac.len() as u32);
        let part = u128::from(f) * u128::from(scale) / u128::from(denominator);
        bytes = bytes.checked_add(u64::try_from(part).ok()?)?;
    }
    Some(bytes)
}

/// The cores a CPU quantity means: `2`, `0.5`, `500m`, and metrics-server's `250000u` and
/// `1234567n`; `None` for anything else, a negative or a non-finite value.
pub fn cores_of(q: &str) -> Option<f64> {
    let q = q.trim();
    let (number, scale) = match q.char_indices().last()? {
        (i, 'n') => (&q[..i], 1e-9),
        (i, 'u') => (&q[..i], 1e-6),
        (i, 'm') => (&q[..i], 1e-3),
        _ => (q, 1.0),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let v = number.parse::<f64>().ok()? * scale;
    v.is_finite().then_some(v)
}

/// `bytes` in the largest binary unit that divides it (`512Mi`, `3Gi`), else in `Mi` rounded
/// up (a limit is never lowered by the writing), else bytes.
pub fn format_bytes(bytes: u64) -> String {
    for (unit, scale) in [("Ti", 1u64 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20)] {
        if bytes >= scale && bytes.is_multiple_of(scale) {
            return format!("{}{unit}", bytes / scale);
        }
    }
    if bytes >= 1 << 20 {
        return format!("{}Mi", bytes.div_ceil(1 << 20));
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quantities_read_as_kubernetes_reads_them() {
        assert_eq!(bytes_of("256Mi"), Some(256 << 20));
        assert_eq!(bytes_of("1Gi"), Some(1 << 30));
        assert_eq!(bytes_of("1.5Gi"), Some(3 << 29));
        assert_eq!(bytes_of("512M"), Some(512_000_000));
        assert_eq!(bytes_of("1e9"), Some(1_000_000_000));
        assert_eq!(bytes_of("134217728"), Some(134_217_728));
        for bad in [
            "",
            "Mi",
            "abc",
            "1.2.3Gi",
            "99999999999999999999Pi",
            "1e20",
            "-1Gi",
            "1Xi",
        ] {
            assert_eq!(bytes_of(bad), None, "{bad}");
        }
        assert_eq!(format_bytes(512 << 20), "512Mi");
        assert_eq!(format_bytes(2 << 30), "2Gi");
        assert_eq!(format_bytes((1 << 20) + 1), "2Mi");
        assert_eq!(format_bytes(1000), "1000");
        assert_eq!(cores_of("500m"), Some(0.5));
        assert_eq!(cores_of("2"), Some(2.0));
        assert!((cores_of("250000000n").unwrap() - 0.25).abs() < 1e-12);
        assert!((cores_of("1500u").unwrap() - 0.0015).abs() < 1e-12);
        for bad in ["", "m", "-1", "1e3m", "abc", "1.2.3"] {
            assert_eq!(cores_of(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_text_reads_or_is_none_and_written_sizes_read_back_at_least_as_large(s in "\\PC{0,24}", n in 0u64..(1 << 50)) {
            let _ = bytes_of(&s);
            let back = bytes_of(&format_bytes(n)).unwrap();
            prop_assert!(back >= n);
            prop_assert!(back - n < 1 << 20);
        }
    }
}
