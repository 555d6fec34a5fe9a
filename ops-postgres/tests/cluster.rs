//! The throwaway cluster starts, answers and stops.

use ops_postgres::cluster::TestCluster;

#[tokio::test]
async fn a_cluster_starts_answers_and_stops() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let db = cluster.database("ops_smoke").await.unwrap();
    let client = db.client().await.unwrap();
    let row = client
        .query_one("SELECT current_database(), version()", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "ops_smoke");
    assert!(row.get::<_, String>(1).starts_with("PostgreSQL"));
    assert!(!format!("{:?}", db.config()).contains("password"));
}

/// Run as a child process by the test below: starts a cluster, prints its URL, and waits to
/// be killed.
#[test]
#[ignore = "the child process of a_cluster_whose_owner_is_killed_stops_by_itself"]
fn owner_of_a_cluster_for_the_kill_test() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    println!("URL {}", cluster.url());
    // Block until killed: reading stdin, which the parent never closes.
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[tokio::test]
async fn a_cluster_whose_owner_is_killed_stops_by_itself() {
    use std::io::BufRead;
    if std::env::var_os("OPS_TEST_DATABASE_URL").is_some() {
        panic!("this test needs its own cluster: unset OPS_TEST_DATABASE_URL to run it");
    }
    let mut owner = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "owner_of_a_cluster_for_the_kill_test",
            "--ignored",
            "--nocapture",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = owner.stdout.take().unwrap();
    let url = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("URL ").map(str::to_string))
        .expect("the owner prints its cluster's URL");
    let config = ops_postgres::PgConfig::new(url.clone()).unwrap();
    let db = ops_postgres::Postgres::new(config.clone()).unwrap();
    let _answers = db
        .client()
        .await
        .expect("the cluster answers while its owner lives");

    // kill -9: no destructor runs.
    owner.kill().unwrap();
    owner.wait().unwrap();

    // Readiness, not a fixed wait: look until the server refuses, for at most 30 s.
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let fresh = ops_postgres::Postgres::new(config.clone()).unwrap();
            if fresh.dedicated().await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        stopped.is_ok(),
        "the cluster at {url} still answers 30 s after its owner was killed"
    );
}
