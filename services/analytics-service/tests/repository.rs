//! The event store against a real Postgres: a batch is stored in one statement, each
//! event id once, whether it repeats inside the batch or was stored before.

use analytics_service::repository::{EventRepository, StoredEvent};
use chrono::{TimeZone, Utc};
use pulsetrack_common::{db::DatabaseConfig, testing::TestDatabase};
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

fn event(offset: i64) -> StoredEvent {
    StoredEvent {
        event_id: Uuid::now_v7(),
        patient_id: Uuid::now_v7(),
        event_type: "PATIENT_CREATED".into(),
        name: format!("Patient {offset}"),
        email: format!("p{offset}@example.com"),
        occurred_at: Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).single().expect("a time"),
        kafka_partition: 1,
        kafka_offset: offset,
    }
}

#[tokio::test]
async fn a_batch_stores_each_event_once() {
    let db = TestDatabase::create("analytics").await;
    let pool =
        pulsetrack_common::db::connect_and_migrate(&DatabaseConfig::with_url(db.url()), &MIGRATOR).await.expect("db");
    let events = EventRepository::new(pool.clone());

    let stored_before = event(0);
    assert!(events.insert(&stored_before).await.expect("insert"));
    let (a, b) = (event(1), event(2));
    // `a` twice in the batch (a redelivery inside one poll) and one stored before.
    let batch = [a.clone(), stored_before.clone(), b.clone(), a.clone()];
    assert_eq!(events.insert_many(&batch).await.expect("batch"), 2, "only a and b are new");
    assert_eq!(events.insert_many(&batch).await.expect("replayed batch"), 0, "a replay stores nothing");

    for expected in [&stored_before, &a, &b] {
        assert_eq!(events.of_patient(expected.patient_id).await.expect("read"), vec![expected.clone()]);
    }
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM patient_events").fetch_one(&pool).await.expect("count");
    assert_eq!(total, 3);
    pool.close().await;
}
