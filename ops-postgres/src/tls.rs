//! TLS to the server: the libpq `sslmode` values managed providers put in their URLs
//! (`verify-full`, `verify-ca`) and `sslrootcert`, on rustls.
//!
//! `tokio-postgres` knows only `disable`, `prefer` and `require`, so those two parameters are
//! taken out of the connection string here and applied to the rustls configuration:
//!
//! | `sslmode` | what is checked |
//! |---|---|
//! | `verify-full` | the certificate chains to a trusted root and names the host |
//! | `verify-ca` | the certificate chains to a trusted root (any name) |
//! | `require`, `prefer` | as `verify-full` (rustls always verifies: stricter than libpq) |
//!
//! Trusted roots are the `sslrootcert` file's certificates (PEM), or the Mozilla roots that
//! ship with the crate when none is given.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ops_core::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// How far the server's certificate is checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SslVerify {
    /// Chain and host name (`verify-full`, and what `require` / `prefer` get here).
    #[default]
    Full,
    /// Chain only (`verify-ca`).
    Ca,
}

/// The TLS settings taken out of a connection string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// How far the certificate is checked.
    pub verify: SslVerify,
    /// The libpq `sslmode` asked for, when it was `verify-full` or `verify-ca` (the tools get it).
    pub libpq_mode: Option<&'static str>,
    /// `sslrootcert`: a PEM file of trusted roots.
    pub root_cert: Option<PathBuf>,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::invalid_input("postgres", "config", "url", reason)
}

/// `%XX` decoding of a URL query value.
fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Applies one `key=value` parameter to `settings`; `Some(replacement)` when the parameter must
/// be rewritten (`None` inside: dropped) before `tokio-postgres` reads the string.
fn take(key: &str, value: &str, settings: &mut TlsSettings) -> Option<Option<&'static str>> {
    match (key, value) {
        ("sslmode", "verify-full") => {
            settings.verify = SslVerify::Full;
            settings.libpq_mode = Some("verify-full");
            Some(Some("sslmode=require"))
        }
        ("sslmode", "verify-ca") => {
            settings.verify = SslVerify::Ca;
            settings.libpq_mode = Some("verify-ca");
            Some(Some("sslmode=require"))
        }
        ("sslrootcert", path) => {
            settings.root_cert = Some(PathBuf::from(path));
            Some(None)
        }
        _ => None,
    }
}

/// Takes `sslmode=verify-*` and `sslrootcert` out of a URL or key-value connection string.
pub fn split_tls_params(conn: &str) -> Result<(String, TlsSettings)> {
    let mut settings = TlsSettings::default();
    if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        let Some((base, query)) = conn.split_once('?') else {
            return Ok((conn.to_string(), settings));
        };
        let mut kept = Vec::new();
        let mut changed = false;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match take(k, &percent_decode(v), &mut settings) {
                Some(Some(replacement)) => kept.push(replacement.to_string()),
                Some(None) => {}
                None => {
                    kept.push(pair.to_string());
                    continue;
                }
            }
            changed = true;
        }
        // Untouched unless a TLS parameter was taken out.
        if !changed {
            return Ok((conn.to_string(), settings));
        }
        let rebuilt = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rebuilt, settings));
    }
    // key=value form: whitespace-separated; quoted values are left alone.
    let mut out = String::with_capacity(conn.len());
    for piece in conn.split_inclusive(char::is_whitespace) {
        let token = piece.trim_end();
        let (k, v) = token.split_once('=').unwrap_or((token, ""));
        if v.starts_with('\'') {
            out.push_str(piece);
            continue;
        }
        match take(k.trim(), v, &mut settings) {
            Some(Some(replacement)) => {
                out.push_str(replacement);
                out.push_str(&piece[token.len()..]);
            }
            Some(None) => {}
            None => out.push_str(piece),
        }
    }
    if settings
        .root_cert
        .as_deref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        return Err(bad("sslrootcert is empty"));
    }
    Ok((out, settings))
}

fn roots(root_cert: Option<&Path>) -> Result<rustls::RootCertStore> {
    let Some(path) = root_cert else {
        return Ok(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(format!("sslrootcert {}: {e}", path.display())))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(format!("sslrootcert {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(bad(format!(
            "sslrootcert {} holds no certificate",
            path.display()
        )));
    }
    let mut store = rustls::RootCertStore::empty();
    for cert in certs {
        store
            .add(cert)
            .map_err(|e| bad(format!("sslrootcert {}: {e}", path.display())))?;
    }
    Ok(store)
}

/// `verify-ca`: the chain is checked by webpki; only a name mismatch is forgiven.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The rustls connector for `settings`.
pub fn connector(settings: &TlsSettings) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = Arc::new(roots(settings.root_cert.as_deref())?);
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS: {e}")))?;
    let config = match settings.verify {
        SslVerify::Full => builder.with_root_certificates(roots).with_no_client_auth(),
        SslVerify::Ca => {
            let webpki =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| bad(format!("TLS: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
                .with_no_client_auth()
        }
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_and_root_certs_are_taken_out_of_urls() {
        let (url, s) = split_tls_params(
            "postgres://u:p@db.example.com:5432/app?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=ops",
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres://u:p@db.example.com:5432/app?sslmode=require&application_name=ops"
        );
        assert_eq!(s.verify, SslVerify::Full);
        assert_eq!(s.libpq_mode, Some("verify-full"));
        assert_eq!(s.root_cert.as_deref(), Some(Path::new("/etc/ca.pem")));
        let (url, s) = split_tls_params("postgresql://h/app?sslmode=verify-ca").unwrap();
        assert_eq!(url, "postgresql://h/app?sslmode=require");
        assert_eq!(s.verify, SslVerify::Ca);
        let (url, s) = split_tls_params("postgres://h/app?sslmode=disable").unwrap();
        assert_eq!(url, "postgres://h/app?sslmode=disable");
        assert_eq!(s, TlsSettings::default());
    }

    #[test]
    fn verify_modes_are_taken_out_of_key_value_strings() {
        let (conn, s) =
            split_tls_params("host=db port=5432 sslmode=verify-ca sslrootcert=/ca.pem dbname=x")
                .unwrap();
        assert_eq!(conn, "host=db port=5432 sslmode=require dbname=x");
        assert_eq!(s.verify, SslVerify::Ca);
        assert_eq!(s.root_cert.as_deref(), Some(Path::new("/ca.pem")));
        // A quoted value is never touched.
        let (conn, _) = split_tls_params("password='sslmode=verify-ca  x' host=db").unwrap();
        assert_eq!(conn, "password='sslmode=verify-ca  x' host=db");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 2000,
            failure_persistence: None,
            ..Default::default()
        })]

        /// Any connection string: split or refused, never a panic; without TLS parameters it
        /// passes through unchanged, and no `sslmode=verify-*` parameter reaches tokio-postgres
        /// (text that only contains it, inside another key, is tokio-postgres' to refuse).
        #[test]
        fn any_connection_string_splits_or_is_refused(
            conn in "(postgres://|postgresql://|host=)?\\PC{0,40}(\\?|&| )?(sslmode=(verify-full|verify-ca|require)|sslrootcert=%2F\\PC{0,8}|\\PC{0,12})?",
        ) {
            if let Ok((rewritten, settings)) = split_tls_params(&conn) {
                let url = conn.starts_with("postgres://") || conn.starts_with("postgresql://");
                // The parameters tokio-postgres reads: a URL's query pairs, or key=value words.
                let passed_on = if url {
                    rewritten
                        .split_once('?')
                        .is_some_and(|(_, q)| q.split('&').any(|t| t.starts_with("sslmode=verify-")))
                } else {
                    rewritten
                        .split_whitespace()
                        .any(|t| t.starts_with("sslmode=verify-"))
                };
                proptest::prop_assert!(!passed_on, "{}", rewritten);
                if !conn.contains("sslmode=verify-") && !conn.contains("sslrootcert") {
                    proptest::prop_assert_eq!(&rewritten, &conn);
                    proptest::prop_assert_eq!(settings, TlsSettings::default());
                }
            }
        }

        #[test]
        fn percent_decoding_never_panics(v in "(%|%[0-9a-fA-F]{0,2}|\\PC){0,30}") {
            let _ = percent_decode(&v);
        }
    }

    #[test]
    fn a_missing_or_empty_root_file_is_a_typed_error() {
        let missing = TlsSettings {
            root_cert: Some("/no/such/ca.pem".into()),
            ..Default::default()
        };
        assert!(connector(&missing).is_err());
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        let err = connector(&TlsSettings {
            root_cert: Some(empty),
            ..Default::default()
        })
        .err()
        .unwrap();
        assert!(err.to_string().contains("no certificate"), "{err}");
    }
}
