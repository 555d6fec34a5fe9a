//! Where the API server and the credentials come from: a kubeconfig or the pod's service
//! account, read by kube's own loader (`kube::Config`), then turned into this crate's
//! [`KubeConfig`]. Bearer tokens, token files (re-read when refused), client certificates and
//! `exec` plugins (`gke-gcloud-auth-plugin`, `aws eks get-token`) are supported; basic auth and
//! the removed `auth-provider` plugins are `Unsupported`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};
use ops_core::clock::peer_timeout;
use ops_core::http::{AccessToken, TlsOptions, TokenSource};
use ops_core::{Error, ErrorKind, Result};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::KubeConfig;

/// How requests authenticate.
#[derive(Clone, Default)]
pub enum Credentials {
    /// None (a local proxy such as `kubectl proxy`, or client certificates only).
    #[default]
    None,
    /// A bearer token.
    Token(SecretString),
    /// A bearer token read from a file, read again when the server refuses it (projected
    /// service-account tokens rotate).
    TokenFile(PathBuf),
    /// A credential plugin run for each new token.
    Exec(ExecPlugin),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Token(_) => f.write_str("Token([redacted])"),
            Credentials::TokenFile(p) => write!(f, "TokenFile({})", p.display()),
            Credentials::Exec(e) => write!(f, "Exec({})", e.command),
        }
    }
}

/// A client-go credential plugin: a command printing an `ExecCredential`.
#[derive(Clone, PartialEq, Eq)]
pub struct ExecPlugin {
    /// The command.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// What to tell a user who lacks the command.
    pub install_hint: Option<String>,
}

impl std::fmt::Debug for ExecPlugin {
    // Arguments and environment may carry secrets (a role, a key file): only the command.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecPlugin")
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

/// How long a credential plugin may take.
const EXEC_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub(super) struct ExecSource(pub(super) ExecPlugin);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecCredential {
    #[serde(default)]
    status: Option<ExecStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecStatus {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    expiration_timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    client_certificate_data: Option<String>,
}

/// Reads an `ExecCredential` printed by a plugin: its token and expiry.
pub(super) fn read_exec_credential(stdout: &[u8]) -> Result<AccessToken> {
    let bad =
        |reason: String| Error::invalid_input("kubernetes", "exec_credential", "exec", reason);
    let cred: ExecCredential = serde_json::from_slice(stdout)
        .map_err(|e| bad(format!("the plugin printed no ExecCredential: {e}")))?;
    let status = cred
        .status
        .ok_or_else(|| bad("the ExecCredential has no status".into()))?;
    match (status.token, status.client_certificate_data) {
        (Some(t), _) if !t.trim().is_empty() => {
            Ok(AccessToken::new(t, status.expiration_timestamp))
        }
        (_, Some(_)) => Err(Error::unsupported(
            "kubernetes",
            "exec_credential",
            "client certificates from a credential plugin",
        )),
        _ => Err(bad("the ExecCredential carries no token".into())),
    }
}

#[async_trait]
impl TokenSource for ExecSource {
    async fn fetch(&self) -> Result<AccessToken> {
        let p = &self.0;
        let mut cmd = tokio::process::Command::new(&p.command);
        cmd.args(&p.args)
            .envs(&p.env)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let run = peer_timeout(EXEC_TIMEOUT, cmd.output())
            .await
            .ok_or_else(|| {
                Error::new(
                    "kubernetes",
                    "exec_credential",
                    ErrorKind::Timeout {
                        after: EXEC_TIMEOUT,
                    },
                )
            })?;
        let out = run.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::new(
                "kubernetes",
                "exec_credential",
                ErrorKind::NotFound {
                    resource: format!(
                        "the kubeconfig's credential plugin {}: {}",
                        p.command,
                        p.install_hint
                            .as_deref()
                            .unwrap_or("install it or fix the kubeconfig")
                    ),
                },
            ),
            _ => Error::io("kubernetes", "exec_credential", &e),
        })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(Error::invalid_input(
                "kubernetes",
                "exec_credential",
                "exec",
                format!(
                    "{} exited with {}: {}",
                    p.command,
                    out.status,
                    ops_core::redact::redact_text(
                        stderr.chars().take(400).collect::<String>().trim()
                    )
                ),
            ));
        }
        read_exec_credential(&out.stdout)
    }
}

#[derive(Debug)]
pub(super) struct TokenFileSource(pub(super) PathBuf);

#[async_trait]
impl TokenSource for TokenFileSource {
    async fn fetch(&self) -> Result<AccessToken> {
        let text = tokio::fs::read_to_string(&self.0)
            .await
            .map_err(|e| Error::io("kubernetes", "token_file", &e))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(Error::invalid_input(
                "kubernetes",
                "token_file",
                "token_file",
                format!("{} is empty", self.0.display()),
            ));
        }
        Ok(AccessToken::new(token, None))
    }
}

fn config_error(e: impl std::fmt::Display) -> Error {
    Error::invalid_input("kubernetes", "config", "kubeconfig", e.to_string())
}

impl KubeConfig {
    /// The kubeconfig (`KUBECONFIG`, else `~/.kube/config`, its current context), else the
    /// pod's service account: what `kubectl` and kube-rs would use.
    pub async fn infer() -> Result<Self> {
        let c = kube::Config::infer().await.map_err(config_error)?;
        Self::from_kube(c)
    }

    /// A context of the kubeconfig at `path` (its current context with `None`).
    pub async fn from_kubeconfig(path: &std::path::Path, context: Option<&str>) -> Result<Self> {
        let file = kube::config::Kubeconfig::read_from(path).map_err(config_error)?;
        let options = kube::config::KubeConfigOptions {
            context: context.map(str::to_owned),
            ..Default::default()
        };
        let c = kube::Config::from_custom_kubeconfig(file, &options)
            .await
            .map_err(config_error)?;
        Self::from_kube(c)
    }

    /// This crate's view of a configuration kube loaded.
    pub fn from_kube(c: kube::Config) -> Result<Self> {
        let server = Url::parse(&c.cluster_url.to_string()).map_err(config_error)?;
        let auth = &c.auth_info;
        if auth.username.is_some() || auth.password.is_some() {
            return Err(Error::unsupported(
                "kubernetes",
                "config",
                "basic authentication (removed from Kubernetes in 1.19)",
            ));
        }
        if auth.auth_provider.is_some() {
            return Err(Error::unsupported(
                "kubernetes",
                "config",
                "auth-provider plugins (removed from client-go): use an exec plugin such as gke-gcloud-auth-plugin",
            ));
        }
        let credentials = if let Some(t) = &auth.token {
            Credentials::Token(SecretString::from(t.expose_secret().to_string()))
        } else if let Some(f) = &auth.token_file {
            Credentials::TokenFile(PathBuf::from(f))
        } else if let Some(e) = &auth.exec {
            let command = e
                .command
                .clone()
                .ok_or_else(|| config_error("an exec plugin without a command"))?;
            let env = e
                .env
                .iter()
                .flatten()
                .filter_map(|kv| Some((kv.get("name")?.clone(), kv.get("value")?.clone())))
                .collect();
            Credentials::Exec(ExecPlugin {
                command,
                args: e.args.clone().unwrap_or_default(),
                env,
                install_hint: e.install_hint.clone(),
            })
        } else {
            Credentials::None
        };
        let mut tls = TlsOptions {
            root_certs_der: c.root_cert.clone().unwrap_or_default(),
            accept_invalid_certs: c.accept_invalid_certs,
            ..TlsOptions::default()
        };
        if let Some(path) = &c.root_cert_file {
            let pem = std::fs::read(path).map_err(|e| Error::io("kubernetes", "config", &e))?;
            tls.root_certs_pem.push(pem);
        }
        tls.identity_pem = identity_pem(auth)?.map(Into::into);
        if c.tls_server_name.is_some() || c.proxy_url.is_some() {
            tracing::warn!("the kubeconfig's tls-server-name and proxy-url are not used");
        }
        Ok(Self {
            server,
            namespace: c.default_namespace.clone(),
            credentials,
            tls,
            http: Default::default(),
        })
    }
}

/// The client certificate and key as one PEM, from their `-data` fields (base64) or files.
fn identity_pem(auth: &kube::config::AuthInfo) -> Result<Option<Vec<u8>>> {
    let b64 = |what: &str, data: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| config_error(format!("{what}: {e}")))
    };
    let file = |path: &str| std::fs::read(path).map_err(|e| Error::io("kubernetes", "config", &e));
    let cert = match (&auth.client_certificate_data, &auth.client_certificate) {
        (Some(d), _) => Some(b64("client-certificate-data", d)?),
        (None, Some(p)) => Some(file(p)?),
        _ => None,
    };
    let key = match (&auth.client_key_data, &auth.client_key) {
        (Some(d), _) => Some(b64("client-key-data", d.expose_secret())?),
        (None, Some(p)) => Some(file(p)?),
        _ => None,
    };
    match (cert, key) {
        (Some(mut c), Some(k)) => {
            c.push(b'\n');
            c.extend_from_slice(&k);
            Ok(Some(c))
        }
        (None, None) => Ok(None),
        _ => Err(config_error(
            "a client certificate needs its key, and a key its certificate",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Whatever a plugin prints gives a token or a typed error, never a panic.
        #[test]
        fn any_plugin_output_is_a_token_or_a_typed_error(out in proptest::collection::vec(any::<u8>(), 0..300), token in "\\PC{0,40}") {
            let _ = read_exec_credential(&out);
            let printed = serde_json::json!({"status": {"token": token}}).to_string();
            match read_exec_credential(printed.as_bytes()) {
                Ok(t) => prop_assert_eq!(t.secret(), token.as_str()),
                Err(e) => {
                    let typed = matches!(e.kind(), ErrorKind::InvalidInput { .. });
                    prop_assert!(typed && token.trim().is_empty(), "{}", e);
                }
            }
        }
    }

    #[test]
    fn exec_credentials_read_their_token_or_say_why_not() {
        let t = read_exec_credential(br#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false},"status":{"expirationTimestamp":"2026-12-01T16:00:00Z","token":"ya29.secret"}}"#).unwrap();
        assert_eq!(t.secret(), "ya29.secret");
        assert!(t.expires_at().is_some());
        for bad in [
            &b"not json"[..],
            br#"{"kind":"ExecCredential"}"#,
            br#"{"status":{"token":""}}"#,
        ] {
            let e = read_exec_credential(bad).unwrap_err();
            assert!(matches!(e.kind(), ErrorKind::InvalidInput { .. }), "{e}");
        }
        let e = read_exec_credential(
            br#"{"status":{"clientCertificateData":"x","clientKeyData":"y"}}"#,
        )
        .unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Unsupported { .. }), "{e}");
    }

    #[tokio::test]
    async fn a_kubeconfig_with_a_token_and_a_namespace_loads_and_never_shows_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: prod\nclusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1:6443\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: kube-secret-token\ncontexts:\n- name: prod\n  context:\n    cluster: c\n    user: u\n    namespace: web\n",
        )
        .unwrap();
        let c = KubeConfig::from_kubeconfig(&path, None).await.unwrap();
        assert_eq!(c.server.as_str(), "https://10.0.0.1:6443/");
        assert_eq!(c.namespace, "web");
        assert!(c.tls.accept_invalid_certs);
        assert!(matches!(c.credentials, Credentials::Token(_)));
        assert!(!format!("{c:?}").contains("kube-secret-token"));
        let e = KubeConfig::from_kubeconfig(&path, Some("staging"))
            .await
            .unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::InvalidInput { .. }), "{e}");
    }

    #[tokio::test]
    async fn a_missing_exec_plugin_says_how_to_get_it() {
        let src = ExecSource(ExecPlugin {
            command: "/nonexistent/gke-gcloud-auth-plugin".into(),
            args: vec![],
            env: BTreeMap::new(),
            install_hint: Some("gcloud components install gke-gcloud-auth-plugin".into()),
        });
        let e = src.fetch().await.unwrap_err();
        assert!(e.to_string().contains("gcloud components install"), "{e}");
    }
}
