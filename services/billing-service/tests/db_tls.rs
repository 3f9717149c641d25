//! billing-service against a Postgres that accepts only TLS (`hostssl` only, a server
//! certificate for `localhost` from a CA made for the test), configured through the
//! same variables the stack sets: it serves with `verify-full` as its own
//! least-privileged role, and it is refused without TLS, with a wrong CA, and when the
//! host name does not match the certificate.

use auth_service::testing::TestAuth;
use billing_service::{Application, config::Config};
use pulsetrack_common::{
    audit::{Access, Action, AuditLog, verify},
    config::from_pairs,
    db::{DatabaseConfig, connect_and_migrate},
    service_auth::{self, BILLING_SERVICE, CredentialMinter, PATIENT_SERVICE},
    settings::{
        AUDIT_ANCHORS, AUDIT_KEY, AUTH_SERVICE_URL, BILLING_GRPC_SECRET, DATABASE_ADMIN_PASSWORD, DATABASE_ADMIN_USER,
        DATABASE_HOST, DATABASE_MIGRATIONS, DATABASE_NAME, DATABASE_PASSWORD, DATABASE_PORT, DATABASE_SSL_MODE,
        DATABASE_SSL_ROOT_CERT, DATABASE_USER, GRPC_PORT, PORT, Var,
    },
    testing_postgres::{MASTER, TlsPostgres},
};
use pulsetrack_proto::billing::{BillingRequest, billing_service_client::BillingServiceClient};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const DB: &str = "billing_service";
const ROLE: &str = "billing_service_app";
/// Quotes and a backslash: the role statement must quote it, not break on it.
const ROLE_PASSWORD: &str = "app'pass\\word\"";
/// `BILLING_GRPC_SECRET`, as the stack generates it.
const GRPC_SECRET: &str = "GeneratedAlphanumericSecretOf64CharactersXXXXXXXXXXXXXXXXXXXXXXX";

/// The service's settings as the stack gives them, with `overrides` replacing values
/// (an empty value leaves a variable unset).
fn settings(pg: &TlsPostgres, auth_url: &str, overrides: &[(Var, &str)]) -> Vec<(Var, String)> {
    let mut pairs: Vec<(Var, String)> = vec![
        (PORT, "0".into()),
        (GRPC_PORT, "0".into()),
        (DATABASE_HOST, "localhost".into()),
        (DATABASE_PORT, pg.port().to_string()),
        (DATABASE_NAME, DB.into()),
        (DATABASE_USER, ROLE.into()),
        (DATABASE_PASSWORD, ROLE_PASSWORD.into()),
        (DATABASE_SSL_MODE, "verify-full".into()),
        (DATABASE_SSL_ROOT_CERT, pg.ca_file().display().to_string()),
        (DATABASE_ADMIN_USER, MASTER.into()),
        (DATABASE_ADMIN_PASSWORD, pg.master_password().into()),
        (AUTH_SERVICE_URL, auth_url.into()),
        (BILLING_GRPC_SECRET, GRPC_SECRET.into()),
        // The trail's key (as generated, another one) and a file for its anchors.
        (AUDIT_KEY, GRPC_SECRET.to_lowercase()),
        (AUDIT_ANCHORS, format!("file:{}", std::env::temp_dir().join("pt-billing-db-tls-anchors.jsonl").display())),
    ];
    for (var, value) in overrides {
        pairs.retain(|(v, _)| v != var);
        pairs.push((*var, value.to_string()));
    }
    pairs
}

fn config(pg: &TlsPostgres, auth_url: &str, overrides: &[(Var, &str)]) -> Config {
    let pairs = settings(pg, auth_url, overrides);
    let pairs: Vec<(Var, &str)> = pairs.iter().map(|(v, s)| (*v, s.as_str())).collect();
    Config::from_settings(&from_pairs(&pairs)).expect("valid settings")
}

/// auth-service's address where none is asked: the database settings alone, or a
/// start refused at the database, before the token check reads any key.
const UNASKED_AUTH_URL: &str = "http://127.0.0.1:9";

fn database(pg: &TlsPostgres, overrides: &[(Var, &str)]) -> DatabaseConfig {
    config(pg, UNASKED_AUTH_URL, overrides).database
}

#[tokio::test]
async fn serves_over_verified_tls_as_its_own_role() {
    pulsetrack_common::testing::init_test_logs();
    let pg = TlsPostgres::start().await;
    let auth = TestAuth::start().await;
    let app = Application::build(config(&pg, &auth.url, &[])).await.expect("billing starts with verify-full");
    let (grpc, http) = (format!("http://{}", app.grpc_addr()), format!("http://{}", app.http_addr()));
    tokio::spawn(app.run_until(std::future::pending()));

    let mut client = BillingServiceClient::connect(grpc).await.expect("gRPC");
    let patient = uuid::Uuid::new_v4().to_string();
    let request = BillingRequest { patient_id: patient.clone(), name: "Ada".into(), email: "ada@example.com".into() };
    let mut request = tonic::Request::new(request);
    // patient-service's credential, minted with the secret the service was given.
    let secret = service_auth::ServiceSecret::new(GRPC_SECRET.into()).expect("long enough");
    let credential = CredentialMinter::new(&secret, PATIENT_SERVICE, BILLING_SERVICE).authorization().expect("mints");
    request.metadata_mut().insert(service_auth::AUTHORIZATION, credential.parse().expect("ascii"));
    let account = client.create_billing_account(request).await.expect("account opened").into_inner();
    let response = reqwest::Client::new()
        .get(format!("{http}/billing/accounts/{patient}"))
        .bearer_auth(auth.token(pulsetrack_common::identity::Role::Billing).await)
        .send()
        .await
        .expect("http");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["id"], account.account_id.as_str());
    assert_eq!(reqwest::get(format!("{http}/ready")).await.expect("ready").status(), reqwest::StatusCode::OK);

    // Seen from the server: every connection of the service is its own role, over TLS;
    // the admin's connection is closed.
    let mut su = pg.superuser("postgres").await;
    let sessions: Vec<(String, bool)> = sqlx::query_as(
        "SELECT a.usename::text, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1",
    )
    .bind(DB)
    .fetch_all(&mut su)
    .await
    .expect("sessions");
    assert!(!sessions.is_empty(), "the service holds connections");
    assert!(sessions.iter().all(|(user, ssl)| user == ROLE && *ssl), "{sessions:?}");
}

/// The error of a start-up with `overrides`, with its whole chain.
async fn refused(pg: &TlsPostgres, overrides: &[(Var, &str)]) -> String {
    match Application::build(config(pg, UNASKED_AUTH_URL, overrides)).await {
        Ok(_) => panic!("billing started with {overrides:?}"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn refused_without_tls_with_a_wrong_ca_and_with_a_wrong_host_name() {
    let pg = TlsPostgres::start().await;
    let wrong_ca = pg.wrong_ca_file().display().to_string();

    let err = refused(&pg, &[(DATABASE_SSL_MODE, "disable"), (DATABASE_SSL_ROOT_CERT, "")]).await;
    assert!(err.contains("pg_hba.conf rejects connection") && err.contains("no encryption"), "{err}");

    let err = refused(&pg, &[(DATABASE_SSL_ROOT_CERT, &wrong_ca)]).await;
    assert!(err.contains("UnknownIssuer"), "{err}");

    // The certificate names `localhost`, not 127.0.0.1.
    let err = refused(&pg, &[(DATABASE_HOST, "127.0.0.1")]).await;
    assert!(err.contains("certificate not valid for name \"127.0.0.1\""), "{err}");

    // verify-ca does not check the name: the same address is accepted, with the right CA only.
    let host = [(DATABASE_HOST, "127.0.0.1"), (DATABASE_SSL_MODE, "verify-ca")];
    connect_and_migrate(&database(&pg, &host), &MIGRATOR).await.expect("verify-ca ignores the name");
    let err = refused(&pg, &[host[0], host[1], (DATABASE_SSL_ROOT_CERT, &wrong_ca)]).await;
    assert!(err.contains("UnknownIssuer"), "{err}");
}

/// The SQLSTATE of a statement that must fail.
async fn sqlstate(pool: &sqlx::PgPool, sql: &'static str) -> String {
    match sqlx::query(sql).execute(pool).await {
        Ok(_) => panic!("`{sql}` succeeded as the service's role"),
        Err(sqlx::Error::Database(e)) => e.code().map(|c| c.to_string()).unwrap_or_default(),
        Err(e) => panic!("`{sql}`: {e}"),
    }
}

#[tokio::test]
async fn the_service_role_has_dml_only_and_concurrent_starts_agree() {
    let pg = TlsPostgres::start().await;
    let config = database(&pg, &[]);
    // Three replicas start together: the role is created once and updated twice.
    let (a, b, c) = tokio::join!(
        connect_and_migrate(&config, &MIGRATOR),
        connect_and_migrate(&config, &MIGRATOR),
        connect_and_migrate(&config, &MIGRATOR)
    );
    let pool = a.expect("first replica");
    b.expect("second replica");
    c.expect("third replica");

    let (user, superuser, createrole, createdb): (String, bool, bool, bool) = sqlx::query_as(
        "SELECT current_user::text, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&pool)
    .await
    .expect("role");
    assert_eq!((user.as_str(), superuser, createrole, createdb), (ROLE, false, false, false));

    // DML on its tables works.
    let patient = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO billing_accounts (id, patient_id, name, email, status) VALUES ($1, $2, 'A', 'a@x', 'ACTIVE')",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(patient)
    .execute(&pool)
    .await
    .expect("insert");
    let updated = sqlx::query("UPDATE billing_accounts SET status = 'SUSPENDED' WHERE patient_id = $1")
        .bind(patient)
        .execute(&pool)
        .await
        .expect("update");
    assert_eq!(updated.rows_affected(), 1);
    let deleted = sqlx::query("DELETE FROM billing_accounts WHERE patient_id = $1")
        .bind(patient)
        .execute(&pool)
        .await
        .expect("delete");
    assert_eq!(deleted.rows_affected(), 1);

    // Nothing else: 42501 is insufficient_privilege.
    assert_eq!(sqlstate(&pool, "CREATE TABLE intruder (id int)").await, "42501");
    assert_eq!(sqlstate(&pool, "CREATE TEMP TABLE intruder (id int)").await, "42501");
    assert_eq!(sqlstate(&pool, "DROP TABLE billing_accounts").await, "42501");
    assert_eq!(sqlstate(&pool, "TRUNCATE billing_accounts").await, "42501");
    assert_eq!(sqlstate(&pool, "ALTER TABLE billing_accounts ADD COLUMN x int").await, "42501");
    // The migrations' record: read only (`DATABASE_MIGRATIONS=check` reads it).
    sqlx::query("SELECT version FROM _sqlx_migrations").execute(&pool).await.expect("readable");
    assert_eq!(sqlstate(&pool, "DELETE FROM _sqlx_migrations").await, "42501");
    assert_eq!(sqlstate(&pool, "UPDATE _sqlx_migrations SET success = false").await, "42501");
    assert_eq!(sqlstate(&pool, "CREATE ROLE intruder").await, "42501");

    // The audit trail: the role appends and reads entries, and its grants (checked
    // before the append-only triggers would be) refuse changing or removing one.
    let trail = pulsetrack_common::audit::AuditConfig::for_tests();
    let audit = AuditLog::spawn(pool.clone(), "billing-service", &trail);
    let access = Access::by("u1", "BILLING", Action::BillingRead, axum::http::StatusCode::OK)
        .patients(vec![patient])
        .from_client(Some("r1".into()), None);
    audit.record(access).await.expect("an entry is appended");
    for sql in ["UPDATE audit_log SET actor_id = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"] {
        let error = sqlx::query(sql).execute(&pool).await.expect_err(sql).to_string();
        assert!(error.contains("permission denied for table audit_log"), "{sql}: {error}");
    }
    let report = verify(&pool, "billing-service", &trail).await.expect("verify");
    assert_eq!((report.entries, report.intact), (1, true));

    // A role that is not least-privileged is refused, not used.
    let mut su = pg.superuser("postgres").await;
    sqlx::query("ALTER ROLE billing_service_app CREATEDB").execute(&mut su).await.expect("alter");
    let err = connect_and_migrate(&config, &MIGRATOR).await.expect_err("refused");
    assert!(err.to_string().contains("not a least-privileged role"), "{err}");
}

/// `billing-service migrate` with the settings (and `overrides`): its exit code and output.
fn migrate_step(pg: &TlsPostgres, overrides: &[(Var, &str)]) -> (Option<i32>, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_billing-service"));
    command.arg("migrate").env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (var, value) in settings(pg, UNASKED_AUTH_URL, overrides) {
        command.env(var.name(), value);
    }
    let out = command.output().expect("billing-service runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

/// The separate migration step: `migrate` (the admin role) prepares the database and the
/// role and exits; the service then starts without the admin role, checking only.
#[tokio::test]
async fn the_migrate_step_prepares_what_the_service_then_only_checks() {
    let pg = TlsPostgres::start().await;
    let own_role_only = [(DATABASE_ADMIN_USER, ""), (DATABASE_ADMIN_PASSWORD, ""), (DATABASE_MIGRATIONS, "check")];
    // Before the step (no database, no role): the service does not migrate, it refuses to start.
    let err = refused(&pg, &own_role_only).await;
    assert!(err.contains("cannot log in to the service's database as its role") && err.contains("migrate"), "{err}");

    // The step needs the admin role.
    let (code, text) = migrate_step(&pg, &[(DATABASE_ADMIN_USER, ""), (DATABASE_ADMIN_PASSWORD, "")]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("DATABASE_ADMIN_USER and DATABASE_ADMIN_PASSWORD"), "{text}");

    let (code, text) = migrate_step(&pg, &[]);
    assert_eq!(code, Some(0), "{text}");
    let newest = MIGRATOR.iter().map(|m| m.version).max().expect("migrations");
    let said = format!("database {DB} migrated (newest migration {newest}); role {ROLE} provisioned");
    assert!(text.contains(&said), "{text}");

    // Now it starts with its own role alone, and serves.
    let app = Application::build(config(&pg, UNASKED_AUTH_URL, &own_role_only)).await.expect("checked, starts");
    let mut su = pg.superuser(DB).await;
    let owner: String =
        sqlx::query_scalar("SELECT tableowner::text FROM pg_tables WHERE tablename = 'billing_accounts'")
            .fetch_one(&mut su)
            .await
            .expect("owner");
    assert_eq!(owner, MASTER, "the schema belongs to the admin role, not the service's");
    drop(app);

    // A migration this build knows but the database lacks (as after a failed step) is
    // named, and the service does not start.
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1").bind(newest).execute(&mut su).await.expect("delete");
    let err = refused(&pg, &own_role_only).await;
    assert!(err.contains(&format!("lacks migrations {newest} (")), "{err}");
}
