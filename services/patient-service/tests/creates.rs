//! Group-committed creates against a real database: a batch commits every patient with
//! its outbox rows, answers each create on its own (a taken email fails only its
//! create), and a value Postgres refuses fails only the create that sent it.

use std::collections::HashMap;

use chrono::NaiveDate;
use patient_service::{
    domain::Patient,
    outbox::{self, Destination},
    repository::{NewPatient, PatientRepository, RepoError},
};
use pulsetrack_common::{
    db::{DatabaseConfig, connect_and_migrate},
    group_commit::Batch,
    testing::TestDatabase,
};
use sqlx::PgPool;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

fn new_patient(name: &str, email: &str) -> NewPatient {
    let patient = Patient {
        id: Uuid::now_v7(),
        name: name.into(),
        email: email.into(),
        address: "1 Main St".into(),
        date_of_birth: NaiveDate::from_ymd_opt(1990, 5, 17).expect("date"),
        registered_date: NaiveDate::from_ymd_opt(2026, 1, 15).expect("date"),
    };
    let outbox = vec![outbox::billing_message(&patient), outbox::event_message(&patient, "PATIENT_CREATED")];
    NewPatient { patient, outbox, trace_parent: Some(format!("00-{:032x}-{:016x}-01", 7u128, 9u64)) }
}

/// Outbox rows per patient: (destination, trace_parent).
async fn outbox_rows(pool: &PgPool) -> HashMap<Uuid, Vec<(String, Option<String>)>> {
    let rows: Vec<(Uuid, String, Option<String>)> =
        sqlx::query_as("SELECT aggregate_id, destination, trace_parent FROM outbox ORDER BY id")
            .fetch_all(pool)
            .await
            .expect("outbox");
    let mut by_patient: HashMap<Uuid, Vec<(String, Option<String>)>> = HashMap::new();
    for (patient, destination, trace) in rows {
        by_patient.entry(patient).or_default().push((destination, trace));
    }
    by_patient
}

async fn stored_ids(pool: &PgPool) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT id FROM patients ORDER BY id").fetch_all(pool).await.expect("patients")
}

#[tokio::test]
async fn a_batch_commits_each_patient_with_its_outbox_rows_and_answers_each_create() {
    let db = TestDatabase::create("creates_batch").await;
    let pool = connect_and_migrate(&DatabaseConfig::with_url(db.url()), &MIGRATOR).await.expect("migrated");
    let mut repo = PatientRepository::new(pool.clone());
    let earlier = new_patient("Earlier", "taken@example.com");
    assert!(matches!(repo.commit(vec![earlier.clone()]).await.as_slice(), [Ok(())]));

    let batch = vec![
        new_patient("Ada", "ada@example.com"),
        new_patient("Late", "taken@example.com"),
        new_patient("Grace", "grace@example.com"),
        new_patient("Twin", "grace@example.com"),
        new_patient("Alan", "alan@example.com"),
    ];
    let outcomes = repo.commit(batch.clone()).await;
    let taken: Vec<bool> = outcomes.iter().map(|o| matches!(o, Err(RepoError::EmailTaken))).collect();
    assert_eq!(taken, [false, true, false, true, false], "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, Ok(()) | Err(RepoError::EmailTaken))), "{outcomes:?}");

    let mut expected: Vec<Uuid> = [&earlier, &batch[0], &batch[2], &batch[4]].iter().map(|n| n.patient.id).collect();
    expected.sort();
    assert_eq!(stored_ids(&pool).await, expected);
    // Each stored patient has its billing request and its event, with its request's
    // trace; the refused creates left nothing behind.
    let outbox = outbox_rows(&pool).await;
    assert_eq!(outbox.len(), 4, "{outbox:?}");
    for id in &expected {
        let trace = Some(format!("00-{:032x}-{:016x}-01", 7u128, 9u64));
        let rows = &outbox[id];
        assert_eq!(
            rows,
            &vec![
                (Destination::Billing.as_str().to_string(), trace.clone()),
                (Destination::PatientEvent.as_str().to_string(), trace)
            ]
        );
    }
}

#[tokio::test]
async fn a_value_postgres_refuses_fails_only_the_create_that_sent_it() {
    let db = TestDatabase::create("creates_refused").await;
    let pool = connect_and_migrate(&DatabaseConfig::with_url(db.url()), &MIGRATOR).await.expect("migrated");
    let mut repo = PatientRepository::new(pool.clone());
    // A NUL character: no Postgres text can hold it (SQLSTATE 22021), whatever checked it before.
    let batch = vec![
        new_patient("Ada", "ada@example.com"),
        new_patient("Nul\0l", "nul@example.com"),
        new_patient("Alan", "alan@example.com"),
    ];
    let outcomes = repo.commit(batch.clone()).await;
    assert!(matches!(outcomes[0], Ok(())), "{outcomes:?}");
    assert!(
        matches!(&outcomes[1], Err(RepoError::Database(e)) if pulsetrack_common::error::refused_data(e)),
        "{outcomes:?}"
    );
    assert!(matches!(outcomes[2], Ok(())), "{outcomes:?}");
    let mut expected = vec![batch[0].patient.id, batch[2].patient.id];
    expected.sort();
    assert_eq!(stored_ids(&pool).await, expected);
    assert_eq!(outbox_rows(&pool).await.len(), 2);
}
