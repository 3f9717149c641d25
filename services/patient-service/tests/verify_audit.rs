//! `patient-service verify-audit`, the real binary against a real database and a real
//! anchor file, after each way of tampering with the trail done for real by the table's
//! owner (who can turn the append-only triggers off): exit 0 and the anchored head
//! while the trail is intact; exit 1 naming the breach (`entry-forged`, `rewritten`,
//! `truncated`, `anchor-missing`) and where; exit 2 when the trail cannot be read.

use std::{path::PathBuf, process::Output, sync::Arc, time::Duration};

use chrono::Utc;
use pulsetrack_common::{
    audit::{Access, Action, Anchors, AuditConfig, AuditKey, AuditLog, Entry},
    db::{DatabaseConfig, connect_and_migrate},
    testing::TestDatabase,
};
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A trail of `entries` entries, written through the service's own writer with a key
/// of a known secret, its head anchored in a file of its own.
struct Trail {
    db: TestDatabase,
    pool: PgPool,
    secret: String,
    anchors: PathBuf,
    config: AuditConfig,
}

impl Trail {
    async fn written(entries: usize) -> Self {
        let db = TestDatabase::create("verify_audit").await;
        let pool = connect_and_migrate(&DatabaseConfig::with_url(db.url()), &MIGRATOR).await.expect("migrated");
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let anchors = std::env::temp_dir().join(format!("pt-anchors-{}.jsonl", uuid::Uuid::new_v4().simple()));
        let config = AuditConfig {
            key: AuditKey::from_secret(&secret).expect("key"),
            anchors: Arc::new(Anchors::File(anchors.clone())),
            anchor_interval: Duration::from_secs(1),
        };
        let audit = AuditLog::spawn(pool.clone(), patient_service::SERVICE, &config);
        let patient = uuid::Uuid::now_v7();
        let records = (0..entries).map(|n| {
            let access = Access::by(&format!("user-{n}"), "CLINICIAN", Action::PatientRead, axum::http::StatusCode::OK)
                .patients(vec![patient])
                .from_client(Some(format!("req-{n}")), "203.0.113.7".parse().ok());
            let audit = audit.clone();
            async move { audit.record(access).await }
        });
        for recorded in futures_util::future::join_all(records).await {
            recorded.expect("recorded");
        }
        let trail = Self { db, pool, secret, anchors, config };
        trail.wait_for_anchor(entries as i64).await;
        trail
    }

    async fn wait_for_anchor(&self, seq: i64) {
        for _ in 0..100 {
            let newest = self.config.anchors.newest("patient-service", &self.config.key.verifying()).await;
            if newest.ok().and_then(|n| n.anchor).is_some_and(|a| a.seq == seq) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("entry {seq} was never anchored");
    }

    /// `patient-service verify-audit` with the service's settings.
    async fn verify(&self) -> (Option<i32>, Value) {
        let output = verify_audit(self.db.url(), &self.secret, &self.anchors).await;
        let report = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("a JSON report: {}", String::from_utf8_lossy(&output.stderr)));
        (output.status.code(), report)
    }

    /// A connection of the table's owner with the append-only triggers off for it.
    async fn owner(&self) -> PgConnection {
        let mut owner = PgConnection::connect(self.db.url()).await.expect("connect");
        sqlx::query("SET session_replication_role = replica").execute(&mut owner).await.expect("bypass the triggers");
        owner
    }

    async fn entries(&self) -> Vec<Entry> {
        sqlx::query_as(
            "SELECT seq, at, service, actor_id, actor_role, action, patient_ids, outcome, request_id, client_addr, \
             subject, detail, count, version, prev_hash, hash FROM audit_log ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await
        .expect("entries")
    }
}

async fn verify_audit(database_url: &str, secret: &str, anchors: &std::path::Path) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_patient-service"))
        .arg("verify-audit")
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("AUDIT_KEY", secret)
        .env("AUDIT_ANCHORS", format!("file:{}", anchors.display()))
        .env("AUDIT_ANCHOR_INTERVAL_SECONDS", "1")
        .output()
        .await
        .expect("patient-service runs")
}

fn breach(report: &Value) -> (Option<&str>, Option<i64>) {
    (report["breach"].as_str(), report["brokenAt"].as_i64())
}

#[tokio::test]
async fn an_intact_trail_verifies_against_its_anchor_and_an_unreadable_one_exits_2() {
    let trail = Trail::written(20).await;
    let (code, report) = trail.verify().await;
    assert_eq!(code, Some(0), "{report}");
    assert_eq!((report["entries"].as_i64(), report["intact"].as_bool()), (Some(20), Some(true)), "{report}");
    assert_eq!(report["anchor"]["seq"].as_i64(), Some(20), "checked against the newest anchor: {report}");
    assert_eq!(report["head"], report["anchor"]["hash"]);

    let unreachable = verify_audit("postgres://postgres@127.0.0.1:1/none", &trail.secret, &trail.anchors).await;
    assert_eq!(unreachable.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot read the audit trail"));
}

#[tokio::test]
async fn an_entry_changed_in_place_is_entry_forged() {
    let trail = Trail::written(20).await;
    let mut owner = trail.owner().await;
    sqlx::query("UPDATE audit_log SET client_addr = '198.51.100.1' WHERE seq = 13")
        .execute(&mut owner)
        .await
        .expect("edit");
    let (code, report) = trail.verify().await;
    assert_eq!((code, breach(&report)), (Some(1), (Some("entry-forged"), Some(13))), "{report}");
    assert_eq!(report["entries"].as_i64(), Some(12));
}

#[tokio::test]
async fn an_entry_appended_without_the_key_is_entry_forged_even_with_a_valid_hash_chain() {
    let trail = Trail::written(5).await;
    // What a holder of the database alone can compute: the chain's unkeyed hash.
    let last = trail.entries().await.pop().expect("an entry");
    let mut forged = Entry {
        seq: last.seq + 1,
        at: Utc::now(),
        actor_id: "intruder".into(),
        prev_hash: last.hash.clone(),
        hash: Vec::new(),
        ..last
    };
    // Sealed as the service would, but with a key of its own: the service's is not in
    // the database.
    forged.hash = forged.seal(&AuditKey::generate()).expect("a guessed key").to_vec();
    sqlx::query(
        "INSERT INTO audit_log (seq, at, service, actor_id, actor_role, action, patient_ids, outcome, count, version, \
         prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, 2, $9, $10)",
    )
    .bind(forged.seq)
    .bind(forged.at)
    .bind(&forged.service)
    .bind(&forged.actor_id)
    .bind(&forged.actor_role)
    .bind(&forged.action)
    .bind(&forged.patient_ids)
    .bind(forged.outcome)
    .bind(&forged.prev_hash)
    .bind(&forged.hash)
    .execute(&trail.pool)
    .await
    .expect("the service's role may append");
    let (code, report) = trail.verify().await;
    assert_eq!((code, breach(&report)), (Some(1), (Some("entry-forged"), Some(6))), "{report}");
}

#[tokio::test]
async fn entries_removed_from_the_end_are_truncated() {
    let trail = Trail::written(20).await;
    let mut owner = trail.owner().await;
    sqlx::query("DELETE FROM audit_log WHERE seq > 15").execute(&mut owner).await.expect("delete");
    let (code, report) = trail.verify().await;
    assert_eq!((code, breach(&report)), (Some(1), (Some("truncated"), Some(16))), "{report}");
}

#[tokio::test]
async fn a_chain_replaced_by_one_that_verifies_on_its_own_is_rewritten() {
    let trail = Trail::written(10).await;
    // The owner rewrites history as unkeyed (version 1) entries, each chained and hashed
    // correctly: a chain that holds together, but not the one that was anchored. (The
    // table takes only keyed entries; its owner drops that check first.)
    let mut owner = trail.owner().await;
    sqlx::query("ALTER TABLE audit_log DROP CONSTRAINT audit_log_keyed").execute(&mut owner).await.expect("drop");
    let mut prev = vec![0u8; 32];
    for entry in trail.entries().await {
        let mut rewritten = Entry {
            version: 1,
            actor_id: "someone-else".into(),
            detail: None,
            subject: None,
            prev_hash: prev,
            ..entry
        };
        rewritten.hash = rewritten.seal(&AuditKey::generate()).expect("v1").to_vec();
        sqlx::query("UPDATE audit_log SET actor_id = $2, version = 1, prev_hash = $3, hash = $4 WHERE seq = $1")
            .bind(rewritten.seq)
            .bind(&rewritten.actor_id)
            .bind(&rewritten.prev_hash)
            .bind(&rewritten.hash)
            .execute(&mut owner)
            .await
            .expect("rewrite");
        prev = rewritten.hash;
    }
    let (code, report) = trail.verify().await;
    assert_eq!((code, breach(&report)), (Some(1), (Some("rewritten"), Some(10))), "{report}");

    // An entry removed from the middle is a rewrite too.
    let trail = Trail::written(10).await;
    sqlx::query("DELETE FROM audit_log WHERE seq = 4").execute(&mut trail.owner().await).await.expect("delete");
    let (code, report) = trail.verify().await;
    assert_eq!((code, breach(&report)), (Some(1), (Some("rewritten"), Some(4))), "{report}");
}

#[tokio::test]
async fn entries_no_anchor_covers_in_time_are_anchor_missing() {
    let trail = Trail::written(3).await;
    std::fs::remove_file(&trail.anchors).expect("the anchors removed");
    // Past the deadline (two intervals and two seconds) no anchor covers them.
    tokio::time::sleep(trail.config.anchor_deadline() + Duration::from_millis(500)).await;
    let (code, report) = trail.verify().await;
    assert_eq!((code, breach(&report)), (Some(1), (Some("anchor-missing"), Some(1))), "{report}");
    // An anchor signed with another key does not count.
    let other = AuditConfig { key: AuditKey::generate(), ..trail.config.clone() };
    let writer = AuditLog::spawn(trail.pool.clone(), patient_service::SERVICE, &other);
    writer.record(Access::by("u", "ADMIN", Action::AuditRead, axum::http::StatusCode::OK)).await.expect("recorded");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (code, report) = trail.verify().await;
    assert_eq!(code, Some(1), "{report}");
    assert!(report["anchorsRejected"].as_u64() >= Some(1), "{report}");
}

#[tokio::test]
async fn an_anchor_its_service_did_not_sign_is_anchor_forged_and_unkeyed_entries_are_refused() {
    let trail = Trail::written(3).await;
    let head = trail.entries().await.pop().expect("the head");
    let forged = pulsetrack_common::audit::Anchor {
        service: "patient-service".into(),
        seq: head.seq,
        hash: head.hash.clone(),
        at: Utc::now(),
        signature: vec![7; 64],
    };
    let line = format!("{}\n", serde_json::to_string(&forged).expect("json"));
    std::fs::write(&trail.anchors, [std::fs::read(&trail.anchors).expect("anchors"), line.into_bytes()].concat())
        .expect("appended");
    let (code, report) = trail.verify().await;
    assert_eq!((code, report["breach"].as_str()), (Some(1), Some("anchor-forged")), "{report}");
    // The service's role may append, but not an unkeyed entry.
    let mut legacy = Entry { seq: head.seq + 1, version: 1, prev_hash: head.hash.clone(), ..head };
    legacy.hash = legacy.seal(&AuditKey::generate()).expect("v1").to_vec();
    let refused = sqlx::query(
        "INSERT INTO audit_log (seq, at, service, actor_id, actor_role, action, patient_ids, outcome, count, version, \
         prev_hash, hash) VALUES ($1, now(), 'patient-service', 'x', 'ADMIN', 'PATIENT_READ', '{}', 200, 1, 1, $2, $3)",
    )
    .bind(legacy.seq)
    .bind(&legacy.prev_hash)
    .bind(&legacy.hash)
    .execute(&trail.pool)
    .await
    .expect_err("only keyed entries are taken");
    assert!(refused.to_string().contains("audit_log_keyed"), "{refused}");
}

/// Two replicas of a service write to one database at once: every entry is recorded
/// once, and the trail is still one unbroken chain.
#[tokio::test]
async fn two_writers_on_one_database_keep_one_chain() {
    let db = TestDatabase::create("audit_writers").await;
    let pool = connect_and_migrate(&DatabaseConfig::with_url(db.url()), &MIGRATOR).await.expect("migrated");
    let config = AuditConfig::for_tests();
    let replicas = [
        AuditLog::spawn(pool.clone(), "patient-service", &config),
        AuditLog::spawn(pool.clone(), "patient-service", &config),
    ];
    let records = (0..400).map(|n| {
        let access = Access::by(&format!("user-{n}"), "CLINICIAN", Action::PatientList, axum::http::StatusCode::OK)
            .patients(vec![uuid::Uuid::now_v7(), uuid::Uuid::now_v7()]);
        replicas[n % 2].record(access)
    });
    for recorded in futures_util::future::join_all(records).await {
        recorded.expect("recorded");
    }
    let report = pulsetrack_common::audit::verify(&pool, "patient-service", &config).await.expect("verify");
    assert_eq!((report.entries, report.intact), (400, true), "{report:?}");
    let actors: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT actor_id) FROM audit_log").fetch_one(&pool).await.expect("count");
    assert_eq!(actors, 400);
}
