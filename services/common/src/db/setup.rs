//! Preparing a service's database before it serves: created if missing, migrated,
//! and (admin mode) the service's own role provisioned with only what it needs, so
//! that a compromised service cannot change the schema or rewrite its audit trail.

use sqlx::{Connection, PgConnection, PgPool, postgres::PgConnectOptions};

use super::{
    config::{AdminCredentials, DatabaseConfig},
    pool::pool,
};
use crate::settings::MigrationMode;

/// Why a database could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the service's role {role}: {reason}")]
    Role { role: String, reason: String },
    #[error("the migration step needs the admin role: set DATABASE_ADMIN_USER and DATABASE_ADMIN_PASSWORD")]
    NoAdmin,
    #[error(
        "the database lacks migrations {0}: run `<service> migrate` with the admin role first \
         (DATABASE_MIGRATIONS=check: the service does not migrate)"
    )]
    NotMigrated(String),
    #[error(
        "cannot log in to the service's database as its role ({0}): run `<service> migrate` with the admin \
         role first, which creates both (DATABASE_MIGRATIONS=check: the service does not migrate)"
    )]
    NotPrepared(String),
}

/// Creates the database of `options` when it does not exist yet (the server must be up).
async fn ensure_database(options: &PgConnectOptions) -> Result<(), sqlx::Error> {
    let Some(name) = options.get_database().map(str::to_string) else {
        return Ok(());
    };
    let mut admin = PgConnection::connect_with(&options.clone().database("postgres")).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&name)
        .fetch_one(&mut admin)
        .await?;
    if !exists {
        let sql = format!("CREATE DATABASE {}", quote_ident(&name));
        // The name is quoted by quote_ident, so the statement is safe.
        match sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Another replica created it between our check and our CREATE (42P04), or
            // at the same moment (23505 on pg_database's name index).
            Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("42P04" | "23505")) => {}
            Err(e) => return Err(e),
        }
    }
    admin.close().await
}

/// Ensures the database, runs the service's migrations, and (admin mode) provisions the
/// service's role; or, with `DATABASE_MIGRATIONS=check` and no admin role, checks that a
/// separate step did. Returns the service role's pool.
pub async fn connect_and_migrate(
    config: &DatabaseConfig,
    migrator: &sqlx::migrate::Migrator,
) -> Result<PgPool, SetupError> {
    let options = config.options()?;
    let database = options.get_database().unwrap_or_default().to_string();
    let role = options.get_username().to_string();
    let tls =
        config.ssl_mode.map_or_else(|| format!("{:?} (URL or default)", options.get_ssl_mode()), |m| m.to_string());
    let root_cert = config.ssl_root_cert.as_ref().map(|c| format!("{c:?}"));
    match (&config.admin, config.migrations) {
        (Some(admin), _) => {
            tracing::info!(%database, admin = %admin.user, %role, sslmode = %tls, ?root_cert,
                "database: migrations as the admin role, which provisions the service's role; serving as that role");
            migrate_as_admin(config, admin, migrator).await?;
        }
        (None, MigrationMode::Run) => {
            tracing::info!(%database, %role, sslmode = %tls, ?root_cert,
                "database: no DATABASE_ADMIN_USER: the service's own user runs the migrations (own-user mode)");
            ensure_database(&options).await?;
            let mut conn = PgConnection::connect_with(&options).await?;
            let migrated = migrator.run(&mut conn).await;
            let _ = conn.close().await;
            migrated?;
        }
        (None, MigrationMode::Check) => {
            tracing::info!(%database, %role, sslmode = %tls, ?root_cert,
                "database: migrated by a separate step (DATABASE_MIGRATIONS=check): checking, serving as the service's role");
            check_migrated(&options, migrator).await?;
        }
    }
    Ok(pool(config)?)
}

/// What the separate migration step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    pub database: String,
    pub role: String,
    /// The newest migration applied.
    pub version: Option<i64>,
}

/// The separate migration step (`<service> migrate`): with the admin role, creates the
/// database if missing, runs the migrations and provisions the service's role.
pub async fn migrate(config: &DatabaseConfig, migrator: &sqlx::migrate::Migrator) -> Result<Migrated, SetupError> {
    let admin = config.admin.as_ref().ok_or(SetupError::NoAdmin)?;
    let options = config.options()?;
    migrate_as_admin(config, admin, migrator).await?;
    Ok(Migrated {
        database: options.get_database().unwrap_or_default().to_string(),
        role: options.get_username().to_string(),
        version: migrator.iter().map(|m| m.version).max(),
    })
}

/// As the admin role: the database ensured, the migrations run, the service's role
/// provisioned; the admin connection closed whatever happened.
async fn migrate_as_admin(
    config: &DatabaseConfig,
    admin: &AdminCredentials,
    migrator: &sqlx::migrate::Migrator,
) -> Result<(), SetupError> {
    let role = config.options()?.get_username().to_string();
    let admin_options = config.admin_options(admin)?;
    ensure_database(&admin_options).await?;
    let mut conn = PgConnection::connect_with(&admin_options).await?;
    let prepared = async {
        migrator.run(&mut conn).await?;
        provision_role(&mut conn, &role, config.role_password()?.expose(), config.append_only).await
    }
    .await;
    let _ = conn.close().await;
    prepared
}

/// Every migration `migrator` knows is applied, successfully and unchanged (newer ones
/// a later build applied are fine: a rolling deploy runs both).
async fn check_migrated(options: &PgConnectOptions, migrator: &sqlx::migrate::Migrator) -> Result<(), SetupError> {
    let mut conn = PgConnection::connect_with(options).await.map_err(|e| match &e {
        // 28P01 invalid_password (also an unknown role), 3D000 invalid_catalog_name.
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("28P01" | "3D000")) => {
            SetupError::NotPrepared(e.to_string())
        }
        _ => SetupError::Sql(e),
    })?;
    let applied: Result<Vec<(i64, Vec<u8>, bool)>, sqlx::Error> =
        sqlx::query_as("SELECT version, checksum, success FROM _sqlx_migrations").fetch_all(&mut conn).await;
    let _ = conn.close().await;
    let applied = match applied {
        // No migration table: nothing was migrated.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Vec::new(),
        other => other?,
    };
    let missing: Vec<String> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .filter(|m| !applied.iter().any(|(v, sum, ok)| *v == m.version && *ok && sum[..] == m.checksum[..]))
        .map(|m| format!("{} ({})", m.version, m.description))
        .collect();
    if missing.is_empty() { Ok(()) } else { Err(SetupError::NotMigrated(missing.join(", "))) }
}

/// Serialises role provisioning among replicas starting together (advisory locks are
/// per database; "ptrole").
const ROLE_LOCK: i64 = 0x7074_726f_6c65;

/// Creates or updates `role` (LOGIN, `password`) and grants it exactly what a service
/// needs in the current database, in one transaction under an advisory lock, so that
/// replicas starting together do not collide. Refuses a role that is a superuser, may
/// create roles or databases, or owns the database (grants would mean nothing).
/// The tables the service named append-only lose UPDATE, DELETE and TRUNCATE.
async fn provision_role(
    conn: &mut PgConnection,
    role: &str,
    password: &str,
    append_only: &[&str],
) -> Result<(), SetupError> {
    let refuse = |reason: &str| SetupError::Role { role: role.to_string(), reason: reason.to_string() };
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(ROLE_LOCK).execute(&mut *tx).await?;
    let existing: Option<(bool, bool, bool)> =
        sqlx::query_as("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1")
            .bind(role)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some((superuser, createrole, createdb)) = existing
        && (superuser || createrole || createdb)
    {
        return Err(refuse("exists with SUPERUSER, CREATEROLE or CREATEDB: not a least-privileged role"));
    }
    // Postgres quotes the name (%I) and the password (%L) itself.
    let template = if existing.is_some() {
        "ALTER ROLE %I WITH LOGIN PASSWORD %L"
    } else {
        "CREATE ROLE %I WITH LOGIN PASSWORD %L"
    };
    let statement: String = sqlx::query_scalar("SELECT format($1, $2::text, $3::text)")
        .bind(template)
        .bind(role)
        .bind(password)
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut *tx).await?;
    let (database, schema, owner): (String, String, String) =
        sqlx::query_as("SELECT current_database(), current_schema(), pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
            .fetch_one(&mut *tx)
            .await?;
    if owner == role {
        return Err(refuse("owns the database: it must be owned by the admin role"));
    }
    let (role, database, schema) = (quote_ident(role), quote_ident(&database), quote_ident(&schema));
    for grant in [
        format!("REVOKE ALL ON DATABASE {database} FROM PUBLIC"),
        format!("REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC"),
        format!("GRANT CONNECT ON DATABASE {database} TO {role}"),
        format!("GRANT USAGE ON SCHEMA {schema} TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"),
        // Read only: `DATABASE_MIGRATIONS=check` reads which migrations are applied.
        format!("REVOKE ALL ON TABLE {schema}._sqlx_migrations FROM {role}"),
        format!("GRANT SELECT ON TABLE {schema}._sqlx_migrations TO {role}"),
        format!("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}"),
    ] {
        // Every identifier is quoted by quote_ident, so the statements are safe.
        sqlx::query(sqlx::AssertSqlSafe(grant)).execute(&mut *tx).await?;
    }
    revoke_changes(&mut tx, &schema, &role, append_only).await?;
    tx.commit().await?;
    tracing::info!(%role, %database, "database role provisioned: CONNECT, schema USAGE, table DML, sequence USAGE");
    Ok(())
}

/// Makes each of `tables` that exists append-only for `role` (quoted, as `schema`):
/// the role may add rows and read them, never change or remove one (the audit trail).
async fn revoke_changes(tx: &mut PgConnection, schema: &str, role: &str, tables: &[&str]) -> Result<(), sqlx::Error> {
    for &name in tables {
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(name).fetch_one(&mut *tx).await?;
        if exists {
            let table = quote_ident(name);
            let revoke = format!("REVOKE UPDATE, DELETE, TRUNCATE ON TABLE {schema}.{table} FROM {role}");
            // Quoted identifiers only.
            sqlx::query(sqlx::AssertSqlSafe(revoke)).execute(&mut *tx).await?;
        }
    }
    Ok(())
}

/// Quotes a Postgres identifier (`"` doubled).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("auth"), "\"auth\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
