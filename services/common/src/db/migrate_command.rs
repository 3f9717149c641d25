//! `<service> migrate`: the separate migration step. With the admin role (the RDS
//! master user), it creates the service's database if missing, runs the migrations and
//! provisions the service's own role, then exits; the service then runs with
//! `DATABASE_MIGRATIONS=check` and only its own role. Exit codes: 0 migrated, 1 the
//! step failed, 2 configuration (no admin role among them).

use sqlx::migrate::Migrator;

use super::{DatabaseConfig, setup};
use crate::config::ConfigError;

/// Runs the step and exits when the first argument is `migrate`; returns otherwise.
pub async fn exit_if_migrate_requested(
    service: &'static str,
    database: impl FnOnce() -> Result<DatabaseConfig, ConfigError>,
    migrator: &Migrator,
) {
    if std::env::args().nth(1).as_deref() != Some("migrate") {
        return;
    }
    crate::telemetry::init(service);
    let code = match database() {
        Err(e) => {
            eprintln!("{service} migrate: {e}");
            2
        }
        Ok(config) if config.admin.is_none() => {
            eprintln!("{service} migrate: {}", setup::SetupError::NoAdmin);
            2
        }
        Ok(config) => match setup::migrate(&config, migrator).await {
            Ok(done) => {
                let version = done.version.map_or_else(|| "none".to_string(), |v| v.to_string());
                println!(
                    "{service}: database {} migrated (newest migration {version}); role {} provisioned",
                    done.database, done.role
                );
                0
            }
            Err(e) => {
                eprintln!("{service} migrate: {e}");
                1
            }
        },
    };
    std::process::exit(code);
}
