//! A traffic split as nginx upstream weights, the include file that holds them, and that
//! file read back.
//!
//! Percentages are whole numbers, so integer weights represent every split exactly: each
//! release's percentage is shared among its servers (scaled by the servers' counts so no share
//! is fractional), then all weights are divided by their greatest common divisor. A release at
//! 0 % keeps its servers, marked `down`.

use std::collections::BTreeMap;

use ops_core::contracts::TrafficSplit;
use ops_core::{Error, Result};

/// One server line of the upstream block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerWeight {
    /// The release it serves.
    pub release: String,
    /// Its address (`127.0.0.1:3001`, `unix:/run/app.sock`).
    pub server: String,
    /// Its weight; 0 is written as `down`.
    pub weight: u32,
}

fn bad(field: &str, why: impl Into<String>) -> Error {
    Error::invalid_input("host", "nginx", field, why)
}

/// Whether `s` can be written into nginx's configuration as a word.
pub fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b";{}#\"'\\$".contains(&b))
}

/// The weights of `split` over `servers` (each release's servers). A release of the split
/// without servers is `InvalidInput`; servers of a release the split leaves out are `down`.
pub fn weights(
    split: &TrafficSplit,
    servers: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<ServerWeight>> {
    for a in split.allocations() {
        if servers.get(&a.release).is_none_or(Vec::is_empty) {
            return Err(bad(
                "split",
                format!("release {} has no upstream server configured", a.release),
            ));
        }
    }
    // Scale so that every release's percentage divides evenly among its servers.
    let scale = servers
        .values()
        .map(|v| u64::try_from(v.len()).unwrap_or(1).max(1))
        .fold(1u64, lcm);
    let mut out = Vec::new();
    for (release, addrs) in servers {
        let percent = u64::from(split.percent_of(release));
        let n = u64::try_from(addrs.len()).unwrap_or(1).max(1);
        let each = percent * scale / n;
        for server in addrs {
            out.push((release.clone(), server.clone(), each));
        }
    }
    let divisor = out.iter().map(|(_, _, w)| *w).fold(0, gcd).max(1);
    out.into_iter()
        .map(|(release, server, w)| {
            let weight = u32::try_from(w / divisor)
                .map_err(|_| bad("releases", "too many servers for nginx's weights"))?;
            Ok(ServerWeight {
                release,
                server,
                weight,
            })
        })
        .collect()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn lcm(a: u64, b: u64) -> u64 {
    (a / gcd(a, b).max(1)).saturating_mul(b)
}

/// Each release's share of requests under `weights`, in percent.
pub fn shares(weights: &[ServerWeight]) -> BTreeMap<String, f64> {
    let total: u64 = weights.iter().map(|w| u64::from(w.weight)).sum();
    let mut out = BTreeMap::new();
    for w in weights {
        let share = if total == 0 {
            0.0
        } else {
            f64::from(w.weight) * 100.0 / total as f64
        };
        *out.entry(w.release.clone()).or_insert(0.0) += share;
    }
    out
}

const HEADER: &str = "# Written by ops (ops-host nginx): the traffic split. Edits are overwritten.";

/// The include file holding the upstream block `name` with `weights`.
pub fn render(name: &str, weights: &[ServerWeight]) -> String {
    let mut out = format!("{HEADER}\nupstream {name} {{\n");
    for w in weights {
        let weight = match w.weight {
            0 => "down".to_string(),
            n => format!("weight={n}"),
        };
        out.push_str(&format!(
            "    server {} {weight}; # release {}\n",
            w.server, w.release
        ));
    }
    out.push_str("}\n");
    out
}

/// The weights in an include file [`render`] wrote; anything else is `Decode`.
pub fn parse(text: &str) -> Result<Vec<ServerWeight>> {
    let decode = |why: String| {
        Error::new(
            "host",
            "nginx",
            ops_core::ErrorKind::Decode {
                detail: format!("the upstream file is not one ops wrote: {why}"),
            },
        )
    };
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(decode("no ops header".into()));
    }
    let mut out = Vec::new();
    for line in lines {
        let line = line.trim();
        if line.starts_with("upstream ") || line == "}" || line.is_empty() {
            continue;
        }
        let (directive, release) = line
            .split_once("; # release ")
            .ok_or_else(|| decode(format!("{line:?}")))?;
        let mut words = directive.split_whitespace();
        let (Some("server"), Some(server), Some(weight), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(decode(format!("{line:?}")));
        };
        let weight = match weight {
            "down" => 0,
            w => w
                .strip_prefix("weight=")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| decode(format!("{line:?}")))?,
        };
        out.push(ServerWeight {
            release: release.to_string(),
            server: server.to_string(),
            weight,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn servers(spec: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        spec.iter()
            .map(|(r, s)| (r.to_string(), s.iter().map(|x| x.to_string()).collect()))
            .collect()
    }

    #[test]
    fn the_seeds_stages_as_weights() {
        let s = servers(&[
            ("v2.0.0", &["127.0.0.1:3001"]),
            ("v2.1.0", &["127.0.0.1:3002"]),
        ]);
        for (canary, want) in [(1u8, (99, 1)), (5, (19, 1)), (25, (3, 1)), (100, (0, 1))] {
            let split = TrafficSplit::new([("v2.1.0", canary), ("v2.0.0", 100 - canary)])
                .or_else(|_| TrafficSplit::new([("v2.1.0", 100)]))
                .unwrap();
            let w = weights(&split, &s).unwrap();
            assert_eq!((w[0].weight, w[1].weight), want, "{canary} %");
        }
    }

    #[test]
    fn a_release_of_several_servers_shares_its_percentage_exactly() {
        let s = servers(&[
            ("stable", &["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]),
            ("canary", &["10.0.0.9:80"]),
        ]);
        let split = TrafficSplit::new([("canary", 5), ("stable", 95)]).unwrap();
        let w = weights(&split, &s).unwrap();
        let shares = shares(&w);
        assert!((shares["canary"] - 5.0).abs() < 1e-9, "{shares:?}");
        assert_eq!(
            w.iter().map(|w| w.weight).collect::<Vec<_>>(),
            vec![3, 19, 19, 19]
        );
    }

    #[test]
    fn a_release_without_servers_is_refused() {
        let s = servers(&[("v1", &["127.0.0.1:1"])]);
        let split = TrafficSplit::new([("v2", 100)]).unwrap();
        assert!(weights(&split, &s).is_err());
    }

    #[test]
    fn only_a_file_ops_wrote_reads_back() {
        for text in [
            "upstream app {\n}\n",
            &format!("{HEADER}\n    server a weight=x; # release r\n"),
            &format!("{HEADER}\n    server a b c; # release r\n"),
            &format!("{HEADER}\n    server a weight=1;\n"),
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }

    proptest! {
        #[test]
        fn any_split_is_exact_and_reads_back(
            canary in 0u8..=100,
            stable_servers in 1usize..5,
            canary_servers in 1usize..5,
        ) {
            let stable: Vec<String> = (0..stable_servers).map(|i| format!("127.0.0.1:{}", 3000 + i)).collect();
            let canaries: Vec<String> = (0..canary_servers).map(|i| format!("127.0.0.1:{}", 4000 + i)).collect();
            let s = BTreeMap::from([("stable".to_string(), stable), ("canary".to_string(), canaries)]);
            let split = match canary {
                0 => TrafficSplit::new([("stable", 100)]),
                100 => TrafficSplit::new([("canary", 100)]),
                c => TrafficSplit::new([("canary", c), ("stable", 100 - c)]),
            }.unwrap();
            let w = weights(&split, &s).unwrap();
            let got = shares(&w);
            prop_assert!((got["canary"] - f64::from(canary)).abs() < 1e-9);
            prop_assert_eq!(parse(&render("app", &w)).unwrap(), w);
        }

        #[test]
        fn any_text_reads_back_or_is_refused(text in ".{0,300}") {
            let _ = parse(&text);
            let _ = parse(&format!("{HEADER}\n{text}"));
        }
    }
}
