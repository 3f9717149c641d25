//! Integration-test helpers (feature `testing`): a fresh database per test on the real
//! Postgres, dropped when the test ends, and opt-in test logs (`TEST_LOG=1`).

use sqlx::{Connection, PgConnection};

use crate::{config, db::quote_ident};

/// Server URL for test databases: `TEST_DATABASE_URL`, else local Postgres.
pub fn server_url() -> String {
    config::string_or("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432")
}

/// A database created for one test; dropped (with its connections) on drop.
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates `pt_test_<prefix>_<uuid>` and returns it. Panics when Postgres is not
    /// reachable: tests need the real server, there is no fallback.
    pub async fn create(prefix: &str) -> Self {
        let name = format!("pt_test_{prefix}_{}", uuid::Uuid::new_v4().simple());
        let server = server_url();
        let mut admin = PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap_or_else(|e| panic!("tests need Postgres at {server} (set TEST_DATABASE_URL): {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {}", quote_ident(&name))))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = admin.close().await;
        Self { url: format!("{server}/{name}"), name }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&self.name));
        let server = server_url();
        // Drop runs inside the test's runtime; use a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&format!("{server}/postgres")).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// Turns on logs for a test run when `TEST_LOG` is set.
pub fn init_test_logs() {
    if config::optional("TEST_LOG").is_some() {
        crate::telemetry::init("test");
    }
}
