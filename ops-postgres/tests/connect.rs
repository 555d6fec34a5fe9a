//! Connection failures a person can act on: where the connection went and why, never the
//! password.

use ops_core::ErrorKind;
use ops_postgres::{PgConfig, Postgres};

async fn connect_error(url: &str) -> ops_core::Error {
    let db = Postgres::new(PgConfig::new(url).unwrap()).unwrap();
    match db.client().await {
        Ok(_) => panic!("connected to {url}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_refused_connection_names_the_address_and_the_cause() {
    // Port 1 on loopback: nothing listens there.
    let err = connect_error("postgres://app:hunter2-secret@127.0.0.1:1/shop?sslmode=disable").await;
    let text = err.to_string();
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable { .. }),
        "{text}"
    );
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let dedicated = Postgres::new(
        PgConfig::new("postgres://app:hunter2-secret@127.0.0.1:1/shop?sslmode=disable").unwrap(),
    )
    .unwrap()
    .dedicated()
    .await
    .unwrap_err()
    .to_string();
    assert!(
        dedicated.contains("127.0.0.1:1") && !dedicated.contains("hunter2"),
        "{dedicated}"
    );
}

#[tokio::test]
async fn an_unknown_host_is_named() {
    let err = connect_error(
        "postgres://app:hunter2-secret@no-such-host.invalid:5433/shop?sslmode=disable&connect_timeout=5",
    )
    .await;
    let text = err.to_string();
    assert!(text.contains("no-such-host.invalid:5433"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert_ne!(
        text.trim_end(),
        "postgres connect: unavailable",
        "more than the bare kind"
    );
}
