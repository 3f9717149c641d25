//! The services' TLS identities in the cloud (`pulsetrack_stacks::pulsetrack::tls` has
//! the names): before each change set, `deploy` makes sure that the stack's internal CA
//! exists in Secrets Manager and that every service's secret holds a certificate of it
//! for its names with at least [`RENEW_WITHIN_DAYS`](authority::RENEW_WITHIN_DAYS) left,
//! and passes the secrets' ARNs and versions as the template's parameters. A renewed
//! certificate is a new version, so the task definitions change and ECS rolls the
//! services onto it. `destroy` deletes the secrets with the stack.

pub mod authority;

#[cfg(feature = "aws")]
mod secrets;

#[cfg(feature = "aws")]
pub use self::secrets::{TlsSecrets, current, delete, ensure, placeholders};
