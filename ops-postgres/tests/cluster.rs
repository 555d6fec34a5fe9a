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
