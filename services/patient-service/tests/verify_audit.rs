//! `patient-service verify-audit`, the real binary against a real database: exit 0 and
//! the chain's head while the trail is intact, exit 1 naming the first broken entry
//! after a row was edited behind the triggers, exit 2 when the database cannot be read.

use std::process::Output;

use pulsetrack_common::{
    audit::{Access, Action, AuditLog},
    db::{DatabaseConfig, connect_and_migrate},
    testing::TestDatabase,
};
use serde_json::Value;
use sqlx::{Connection, PgConnection};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

async fn verify_audit(database_url: &str) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_patient-service"))
        .arg("verify-audit")
        .env_clear()
        .env("DATABASE_URL", database_url)
        .output()
        .await
        .expect("patient-service runs")
}

#[tokio::test]
async fn verify_audit_reports_an_intact_chain_and_the_first_edited_entry() {
    let db = TestDatabase::create("verify_audit").await;
    let pool = connect_and_migrate(&DatabaseConfig::with_url(db.url()), &MIGRATOR).await.expect("migrated");
    let audit = AuditLog::spawn(pool.clone(), patient_service::SERVICE);
    let patient = uuid::Uuid::now_v7();
    let entries = (0..20).map(|n| {
        audit.record(Access {
            actor_id: format!("user-{n}"),
            actor_role: "CLINICIAN".into(),
            action: Action::PatientRead,
            patient_ids: vec![patient],
            outcome: 200,
            request_id: Some(format!("req-{n}")),
            client_addr: "203.0.113.7".parse().ok(),
        })
    });
    for recorded in futures_util::future::join_all(entries).await {
        recorded.expect("recorded");
    }

    let intact = verify_audit(db.url()).await;
    assert_eq!(intact.status.code(), Some(0), "{}", String::from_utf8_lossy(&intact.stderr));
    let report: Value = serde_json::from_slice(&intact.stdout).expect("a JSON report");
    assert_eq!((report["entries"].as_i64(), report["intact"].as_bool()), (Some(20), Some(true)), "{report}");

    let mut su = PgConnection::connect(db.url()).await.expect("connect");
    sqlx::query("SET session_replication_role = replica").execute(&mut su).await.expect("bypass the triggers");
    sqlx::query("UPDATE audit_log SET client_addr = '198.51.100.1' WHERE seq = 13")
        .execute(&mut su)
        .await
        .expect("edit");
    let broken = verify_audit(db.url()).await;
    assert_eq!(broken.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&broken.stdout).expect("a JSON report");
    assert_eq!((report["brokenAt"].as_i64(), report["entries"].as_i64()), (Some(13), Some(12)), "{report}");

    let unreachable = verify_audit("postgres://postgres@127.0.0.1:1/none").await;
    assert_eq!(unreachable.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot read the audit trail"));
}

/// Two replicas of a service write to one database at once: every entry is recorded
/// once, and the trail is still one unbroken chain.
#[tokio::test]
async fn two_writers_on_one_database_keep_one_chain() {
    let db = TestDatabase::create("audit_writers").await;
    let pool = connect_and_migrate(&DatabaseConfig::with_url(db.url()), &MIGRATOR).await.expect("migrated");
    let replicas = [AuditLog::spawn(pool.clone(), "patient-service"), AuditLog::spawn(pool.clone(), "patient-service")];
    let records = (0..400).map(|n| {
        replicas[n % 2].record(Access {
            actor_id: format!("user-{n}"),
            actor_role: "CLINICIAN".into(),
            action: Action::PatientList,
            patient_ids: vec![uuid::Uuid::now_v7(), uuid::Uuid::now_v7()],
            outcome: 200,
            request_id: None,
            client_addr: None,
        })
    });
    for recorded in futures_util::future::join_all(records).await {
        recorded.expect("recorded");
    }
    let report = pulsetrack_common::audit::verify(&pool, "patient-service").await.expect("verify");
    assert_eq!((report.entries, report.intact), (400, true), "{report:?}");
    let actors: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT actor_id) FROM audit_log").fetch_one(&pool).await.expect("count");
    assert_eq!(actors, 400);
}
