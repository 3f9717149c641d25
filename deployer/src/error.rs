//! What can go wrong in a command, and the exit code each kind means: decided here,
//! in one place. Messages are for the user; `main` prints them after `error:`.

use pulsetrack_stacks::{ValidationErrors, pulsetrack::ContextError};

#[cfg(feature = "aws")]
/// An AWS call that failed: `<call> failed: <the service's message>`, or the SDK's own
/// description of the error when the service sent no message (unreachable, timed out).
pub fn aws_call_failed(
    call: &str,
    e: &(impl aws_sdk_cloudformation::error::ProvideErrorMetadata + std::fmt::Display),
) -> anyhow::Error {
    anyhow::anyhow!("{call} failed: {}", e.message().map_or_else(|| e.to_string(), str::to_string))
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Differences or drift, where the user asked to fail on them (exit 1).
    #[error("{0}")]
    Found(String),
    /// A deploy, destroy or local run that did not succeed (exit 1).
    #[error("{0:#}")]
    Failed(anyhow::Error),
    /// Bad arguments (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A `-c key=value` the stack model refuses (exit 2).
    #[error(transparent)]
    Context(#[from] ContextError),
    /// The stack model is invalid (exit 3).
    #[error(transparent)]
    InvalidStack(#[from] ValidationErrors),
    /// A local file could not be read or written (exit 4).
    #[error("{0}")]
    Io(String),
    /// An AWS API call failed (exit 4).
    #[error("{0:#}")]
    Aws(anyhow::Error),
    /// Changes that widen access were not approved (exit 5).
    #[error("{0}")]
    ApprovalRefused(String),
    /// A command that calls AWS, asked of a deployer built without the AWS clients
    /// (exit 6): `scripts/deployer` then builds them and runs the command again.
    #[error(
        "`{0}` calls AWS, and this deployer was built without the AWS clients (the `aws` feature; \
         `scripts/up.sh` leaves them out to start sooner): run it through `scripts/deployer`, which adds them"
    )]
    WithoutAws(&'static str),
}

impl Error {
    /// 0 ok, 1 failed or differences found, 2 bad arguments or context, 3 invalid
    /// stack, 4 I/O or AWS error, 5 approval refused, 6 built without the AWS clients.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Found(_) | Error::Failed(_) => 1,
            Error::Usage(_) | Error::Context(_) => 2,
            Error::InvalidStack(_) => 3,
            Error::Io(_) | Error::Aws(_) => 4,
            Error::ApprovalRefused(_) => 5,
            Error::WithoutAws(_) => 6,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_documented_exit_code() {
        assert_eq!(Error::Found("drift".into()).exit_code(), 1);
        assert_eq!(Error::Failed(anyhow::anyhow!("x")).exit_code(), 1);
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
        assert_eq!(Error::InvalidStack(ValidationErrors(vec!["x".into()])).exit_code(), 3);
        assert_eq!(Error::Io("x".into()).exit_code(), 4);
        assert_eq!(Error::Aws(anyhow::anyhow!("x")).exit_code(), 4);
        assert_eq!(Error::ApprovalRefused("x".into()).exit_code(), 5);
        assert_eq!(Error::WithoutAws("deploy").exit_code(), 6);
    }
}
