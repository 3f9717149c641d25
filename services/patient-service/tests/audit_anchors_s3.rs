//! The trail anchored in an S3 bucket with Object Lock, as in the stack, on moto: the
//! service's writer puts each signed head as an object of its own, `patient-service
//! verify-audit` (the real binary, finding the endpoint and credentials in its
//! environment as on ECS) checks the chain against the newest one, a locked anchor
//! cannot be deleted, and entries removed from the end are found.

use std::{sync::Arc, time::Duration};

use aws_sdk_s3::{
    Client,
    config::{BehaviorVersion, Credentials, Region},
    types::{DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule},
};
use pulsetrack_common::{
    audit::{Access, Action, Anchors, AuditConfig, AuditKey, AuditLog},
    db::{DatabaseConfig, connect_and_migrate},
    testing::TestDatabase,
    testing_moto::Moto,
};
use serde_json::Value;
use sqlx::{Connection, PgConnection};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
const BUCKET: &str = "pulsetrack-audit-anchors";

fn client(moto: &Moto) -> Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .force_path_style(true)
        .build();
    Client::from_conf(config)
}

/// The stack's bucket: Object Lock on, every new object locked in governance mode.
async fn locked_bucket(s3: &Client) {
    s3.create_bucket().bucket(BUCKET).object_lock_enabled_for_bucket(true).send().await.expect("bucket");
    let rule = ObjectLockRule::builder()
        .default_retention(DefaultRetention::builder().mode(ObjectLockRetentionMode::Governance).days(1).build())
        .build();
    let lock = ObjectLockConfiguration::builder().object_lock_enabled(ObjectLockEnabled::Enabled).rule(rule).build();
    s3.put_object_lock_configuration().bucket(BUCKET).object_lock_configuration(lock).send().await.expect("lock");
}

async fn verify_audit(moto: &Moto, database_url: &str, secret: &str) -> (Option<i32>, Value) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_patient-service"))
        .arg("verify-audit")
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("AUDIT_KEY", secret)
        .env("AUDIT_ANCHORS", format!("s3://{BUCKET}/trails"))
        .env("AUDIT_ANCHOR_INTERVAL_SECONDS", "1")
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .output()
        .await
        .expect("patient-service runs");
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("a report: {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code(), report)
}

#[tokio::test]
async fn anchors_in_a_locked_bucket_are_checked_and_cannot_be_removed() {
    let moto = Moto::start();
    let s3 = client(&moto);
    locked_bucket(&s3).await;
    let db = TestDatabase::create("anchors_s3").await;
    let pool = connect_and_migrate(&DatabaseConfig::with_url(db.url()), &MIGRATOR).await.expect("migrated");
    let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let anchors =
        pulsetrack_common::audit::S3Anchors::parse(&format!("{BUCKET}/trails")).expect("s3").with_client(s3.clone());
    let config = AuditConfig {
        key: AuditKey::from_secret(&secret).expect("key"),
        anchors: Arc::new(Anchors::S3(anchors)),
        anchor_interval: Duration::from_secs(1),
    };
    let audit = AuditLog::spawn(pool.clone(), patient_service::SERVICE, &config);
    for n in 0..8 {
        let access = Access::by(&format!("user-{n}"), "CLINICIAN", Action::PatientRead, axum::http::StatusCode::OK);
        audit.record(access).await.expect("recorded");
    }
    let mut listed = Vec::new();
    for _ in 0..100 {
        let newest = config.anchors.newest("patient-service", &config.key.verifying()).await.expect("readable");
        if newest.anchor.is_some_and(|a| a.seq == 8) {
            listed = s3
                .list_objects_v2()
                .bucket(BUCKET)
                .prefix("trails/patient-service/")
                .send()
                .await
                .expect("list")
                .contents
                .unwrap_or_default();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let key = listed.first().and_then(|o| o.key.clone()).expect("an anchor object under the service's folder");

    let (code, report) = verify_audit(&moto, db.url(), &secret).await;
    assert_eq!((code, report["anchor"]["seq"].as_i64()), (Some(0), Some(8)), "{report}");

    // The anchor is locked: its version cannot be deleted before its retention ends.
    // (A delete without a version would only put a marker over it; no role of the stack
    // may delete at all.)
    let version = s3.head_object().bucket(BUCKET).key(&key).send().await.expect("head").version_id;
    let removed = s3.delete_object().bucket(BUCKET).key(&key).set_version_id(version).send().await;
    assert!(removed.is_err(), "a locked anchor was deleted");

    let mut owner = PgConnection::connect(db.url()).await.expect("connect");
    sqlx::query("SET session_replication_role = replica").execute(&mut owner).await.expect("bypass the triggers");
    sqlx::query("DELETE FROM audit_log WHERE seq > 5").execute(&mut owner).await.expect("truncate");
    let (code, report) = verify_audit(&moto, db.url(), &secret).await;
    assert_eq!((code, report["breach"].as_str()), (Some(1), Some("truncated")), "{report}");
}
