//! Postgres: one database per service, created on first start if missing, reached over
//! TLS as configured (`DATABASE_SSL_MODE`, `DATABASE_SSL_ROOT_CERT`), a bounded pool, and
//! migrations run by each service with its own `sqlx::migrate!`.
//!
//! Two ways to start, chosen by configuration and logged at start-up:
//! - **admin mode** (`DATABASE_ADMIN_USER`/`DATABASE_ADMIN_PASSWORD` set, as the stack
//!   and `deployer up` do): the admin role (the RDS master user) creates the database,
//!   runs the migrations, and creates or updates the service's own role
//!   (`DATABASE_USER`) with only what the service needs: CONNECT on its database, USAGE
//!   on the schema, SELECT/INSERT/UPDATE/DELETE on its tables, USAGE on its sequences.
//!   The admin connection is closed before the service serves, as that role.
//! - **own-user mode** (no admin credentials: tests, a developer's `DATABASE_URL`): the
//!   configured user runs the migrations itself.
//! - **prepared mode** (no admin credentials, `DATABASE_MIGRATIONS=check`): a separate
//!   step, `<service> migrate` ([`exit_if_migrate_requested`]), ran the admin mode's
//!   work and exited; the service, holding only its own role, checks that every
//!   migration it knows is applied and refuses to start otherwise.
//!
//! The service names its append-only tables (the audit trail) in its
//! [`DatabaseConfig`]; this module knows nothing of what the tables are for.

mod config;
mod migrate_command;
mod pool;
mod setup;
mod tls;

pub use config::{AdminCredentials, DatabaseConfig};
pub use migrate_command::exit_if_migrate_requested;
pub use pool::{ping, pool};
pub use setup::{Migrated, SetupError, connect_and_migrate, migrate, quote_ident};
pub use tls::{RootCert, SslMode};
