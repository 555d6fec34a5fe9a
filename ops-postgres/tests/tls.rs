//! TLS as managed providers ask for it: `sslmode=verify-full` / `verify-ca` with
//! `sslrootcert`, against a real server with a certificate from a test CA.

use std::os::unix::fs::MetadataExt;

use ops_postgres::cluster::TestCluster;
use ops_postgres::{PgConfig, Postgres};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// A CA, and a server certificate it signed for `localhost` only.
fn test_pki() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    (ca_cert.pem(), server.pem(), server_key.serialize_pem())
}

async fn ok(url: &str) -> bool {
    let db = Postgres::new(PgConfig::new(url).unwrap()).unwrap();
    db.client().await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_and_verify_ca_check_what_libpq_checks() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let data = cluster
        .data_dir()
        .expect("this test needs its own cluster: unset OPS_TEST_DATABASE_URL");
    let (ca, cert, key) = test_pki();
    // The server reads its key only if the server's user owns it and nobody else can read it.
    let owner = std::fs::metadata(&data).unwrap();
    for (name, pem, mode) in [("server.crt", &cert, 0o644), ("server.key", &key, 0o600)] {
        let path = data.join(name);
        std::fs::write(&path, pem).unwrap();
        std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .unwrap();
    }
    let admin = Postgres::new(PgConfig::new(cluster.url()).unwrap()).unwrap();
    let client = admin.client().await.unwrap();
    client
        .batch_execute("ALTER SYSTEM SET ssl = on")
        .await
        .unwrap();
    client
        .query_one("SELECT pg_reload_conf()", &[])
        .await
        .unwrap();
    // Readiness: the reload is asynchronous; wait until the server says ssl is on.
    let on = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let c = admin.client().await.unwrap();
            let v: String = c.query_one("SHOW ssl", &[]).await.unwrap().get(0);
            if v == "on" {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(on.is_ok(), "the server never turned ssl on");

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let port = cluster
        .url()
        .split(':')
        .nth(2)
        .and_then(|p| p.split('/').next())
        .unwrap()
        .to_string();
    let url = |host: &str, mode: &str, root: bool| {
        let root = if root {
            format!("&sslrootcert={}", ca_file.display())
        } else {
            String::new()
        };
        format!("postgres://ops@{host}:{port}/postgres?sslmode={mode}{root}")
    };
    assert!(
        ok(&url("localhost", "verify-full", true)).await,
        "the right name and CA"
    );
    assert!(
        !ok(&url("127.0.0.1", "verify-full", true)).await,
        "verify-full refuses a certificate for another name"
    );
    assert!(
        ok(&url("127.0.0.1", "verify-ca", true)).await,
        "verify-ca checks the chain only"
    );
    assert!(
        !ok(&url("localhost", "verify-ca", false)).await,
        "a CA nobody configured is not trusted"
    );
    let err = Postgres::new(PgConfig::new(url("127.0.0.1", "verify-full", true)).unwrap())
        .unwrap()
        .client()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("127.0.0.1"), "{err}");
}
