//! The token signing key comes from configuration only: auth-service derives it from
//! `JWT_SIGNING_SECRET` (or reads `JWT_PRIVATE_KEY`), refuses to start without one, and
//! keeps no key in its database.

mod support;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use auth_service::{Application, tokens::derive_signing_key};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use pulsetrack_common::testing::TestDatabase;
use sqlx::PgPool;

const SECRET: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZab";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// The auth-service binary with only `vars`, its audit trail's settings and `PATH` in
/// its environment.
fn auth_service(vars: &[(&str, &str)]) -> std::process::Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_auth-service"));
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    let anchors = std::env::temp_dir().join(format!("pt-anchors-{}.jsonl", uuid::Uuid::new_v4().simple()));
    command
        .env("AUDIT_KEY", SECRET.to_uppercase())
        .env("AUDIT_ANCHORS", format!("file:{}", anchors.display()))
        .env("GATEWAY_AUDIT_SECRET", SECRET.to_lowercase());
    for (key, value) in vars {
        command.env(key, value);
    }
    command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("auth-service runs")
}

/// Runs auth-service with `vars` until it exits (it must, within 30 s): its stderr.
async fn refused(vars: &[(&str, &str)]) -> String {
    let mut child = auth_service(vars);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("auth-service started with {:?}", vars.iter().map(|(k, _)| k).collect::<Vec<_>>());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!status.success(), "{stderr}");
    stderr
}

#[tokio::test]
async fn without_a_signing_key_it_refuses_to_start_with_a_config_error() {
    let db = TestDatabase::create("auth").await;
    let port = free_port().to_string();
    let stderr = refused(&[("DATABASE_URL", db.url()), ("PORT", &port)]).await;
    assert!(
        stderr.contains("invalid configuration: JWT_SIGNING_SECRET: required") && stderr.contains("JWT_PRIVATE_KEY"),
        "the error names the settings: {stderr}"
    );
    // Nothing was generated into the database: it was never even migrated.
    let pool = PgPool::connect(db.url()).await.expect("connects");
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(tables, 0);
}

#[tokio::test]
async fn it_refuses_every_signing_secret_published_in_the_repository() {
    let db = TestDatabase::create("auth").await;
    let port = free_port().to_string();
    for published in pulsetrack_common::published_secrets::PUBLISHED_SECRETS {
        let stderr = refused(&[("DATABASE_URL", db.url()), ("PORT", &port), ("JWT_SIGNING_SECRET", published)]).await;
        assert!(
            stderr.contains("invalid configuration: JWT_SIGNING_SECRET: is a value published"),
            "{published}: {stderr}"
        );
    }
}

#[tokio::test]
async fn with_a_signing_secret_it_publishes_the_derived_key() {
    let db = TestDatabase::create("auth").await;
    let port = free_port();
    let mut child =
        auth_service(&[("DATABASE_URL", db.url()), ("PORT", &port.to_string()), ("JWT_SIGNING_SECRET", SECRET)]);
    let url = format!("http://127.0.0.1:{port}/.well-known/jwks.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    let jwks: serde_json::Value = loop {
        if let Ok(response) = reqwest::get(&url).await {
            break response.json().await.expect("json");
        }
        if let Some(status) = child.try_wait().expect("wait") {
            let output = child.wait_with_output().expect("output");
            panic!("auth-service exited ({status}): {}", String::from_utf8_lossy(&output.stderr));
        }
        assert!(Instant::now() < deadline, "auth-service did not answer at {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    let expected = URL_SAFE_NO_PAD.encode(derive_signing_key(SECRET).verifying_key().as_bytes());
    assert_eq!(jwks["keys"][0]["x"], expected.as_str(), "{jwks}");
}

#[tokio::test]
async fn no_key_table_exists_after_the_migrations() {
    let db = TestDatabase::create("auth").await;
    let config = support::config(db.url(), SECRET);
    let _server = Application::build(config).await.expect("auth-service starts");
    let pool = PgPool::connect(db.url()).await.expect("connects");
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&pool)
        .await
        .expect("migrations");
    assert_eq!(
        versions,
        [1, 2, 3, 4, 5, 6, 7, 8],
        "0001 created the key table, 0002 dropped it, 0003 added roles and lockouts, 0004 sessions, 0005 TOTP, \
         0006 to 0008 the audit trail"
    );
    let key_table: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('signing_key')::text").fetch_one(&pool).await.expect("regclass");
    assert_eq!(key_table, None);
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
            .fetch_all(&pool)
            .await
            .expect("tables");
    assert_eq!(
        tables,
        [
            "_sqlx_migrations",
            "audit_log",
            "login_failures",
            "password_resets",
            "recovery_codes",
            "refresh_tokens",
            "revocations",
            "sessions",
            "users"
        ]
    );
}
