//! Stored patient events and the summary over them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// A decoded, validated event and where it was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    pub event_id: Uuid,
    pub patient_id: Uuid,
    pub event_type: String,
    pub name: String,
    pub email: String,
    pub occurred_at: DateTime<Utc>,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DayCount {
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    pub count: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub total_events: i64,
    pub events_by_type: std::collections::BTreeMap<String, i64>,
    pub patients_created_per_day: Vec<DayCount>,
}

#[derive(Clone)]
pub struct EventRepository {
    pool: PgPool,
}

impl EventRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Stores the event once; returns false when its id was already stored.
    /// Asks the next consumer to read `topic` from the beginning (migration 0003).
    pub async fn request_reset(&self, topic: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO consumer_resets (topic) VALUES ($1) ON CONFLICT (topic) DO UPDATE SET requested_at = now()",
        )
        .bind(topic)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// Whether a consumer asked for `topic` to be read from the beginning.
    pub async fn reset_requested(&self, topic: &str) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM consumer_resets WHERE topic = $1)")
            .bind(topic)
            .fetch_one(&self.pool)
            .await
    }

    /// The reset of `topic` is done.
    pub async fn clear_reset(&self, topic: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM consumer_resets WHERE topic = $1").bind(topic).execute(&self.pool).await.map(|_| ())
    }

    pub async fn insert(&self, e: &StoredEvent) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "INSERT INTO patient_events \
             (event_id, patient_id, event_type, name, email, occurred_at, kafka_partition, kafka_offset) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(e.event_id)
        .bind(e.patient_id)
        .bind(&e.event_type)
        .bind(&e.name)
        .bind(&e.email)
        .bind(e.occurred_at)
        .bind(e.kafka_partition)
        .bind(e.kafka_offset)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Stores a batch of events in one statement, each id once (a redelivered event,
    /// or the same event twice in the batch, inserts nothing); returns how many rows
    /// were new. All or nothing: an error stores none of them.
    pub async fn insert_many(&self, events: &[StoredEvent]) -> Result<u64, sqlx::Error> {
        let result = sqlx::query(
            "INSERT INTO patient_events \
             (event_id, patient_id, event_type, name, email, occurred_at, kafka_partition, kafka_offset) \
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], \
                                  $6::timestamptz[], $7::int4[], $8::int8[]) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.patient_id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.name.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.email.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.kafka_partition).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.kafka_offset).collect::<Vec<_>>())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    /// Removes the name and email from every stored event of these (deleted) patients;
    /// the events keep their ids, types and times. Returns how many events changed.
    pub async fn erase_personal_data(&self, patients: &[Uuid]) -> Result<u64, sqlx::Error> {
        let result = sqlx::query(
            "UPDATE patient_events SET name = '', email = '' \
             WHERE patient_id = ANY($1) AND (name <> '' OR email <> '')",
        )
        .bind(patients)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    pub async fn of_patient(&self, patient_id: Uuid) -> Result<Vec<StoredEvent>, sqlx::Error> {
        sqlx::query_as(
            "SELECT event_id, patient_id, event_type, name, email, occurred_at, kafka_partition, kafka_offset \
             FROM patient_events WHERE patient_id = $1 ORDER BY occurred_at, event_id",
        )
        .bind(patient_id)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn summary(&self) -> Result<Summary, sqlx::Error> {
        let by_type: Vec<(String, i64)> =
            sqlx::query_as("SELECT event_type, count(*) FROM patient_events GROUP BY event_type ORDER BY event_type")
                .fetch_all(&self.pool)
                .await?;
        let per_day: Vec<(NaiveDate, i64)> = sqlx::query_as(
            "SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, count(*) FROM patient_events \
             WHERE event_type = 'PATIENT_CREATED' GROUP BY day ORDER BY day",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(Summary {
            total_events: by_type.iter().map(|(_, n)| n).sum(),
            events_by_type: by_type.into_iter().collect(),
            patients_created_per_day: per_day.into_iter().map(|(date, count)| DayCount { date, count }).collect(),
        })
    }
}
