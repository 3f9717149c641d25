//! A setting's value in a task definition ([`TaskValue`]), and how a service's typed
//! settings render into the task's `Environment` and `Secrets`.

use pulsetrack_settings::Settings;

use crate::core::{Expr, LogicalId};

/// A setting's value in a task definition.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskValue {
    /// In `Environment`.
    Plain(Expr),
    /// In `Secrets`: its `ValueFrom`, and the ARN of the secret it reads (which the
    /// execution role is granted).
    Secret { value_from: Expr, arn: Expr },
    /// Not set: the service's default applies.
    Unset,
}

impl TaskValue {
    pub fn plain(value: impl Into<Expr>) -> Self {
        Self::Plain(value.into())
    }

    /// The whole string of a Secrets Manager secret.
    pub fn secret(secret: &LogicalId) -> Self {
        Self::Secret { value_from: secret.r#ref(), arn: secret.r#ref() }
    }

    /// One key of a Secrets Manager secret that holds a JSON object (its current version).
    pub fn secret_key(secret: &LogicalId, key: &str) -> Self {
        Self::Secret {
            value_from: Expr::Join(":".into(), vec![secret.r#ref(), format!("{key}::").into()]),
            arn: secret.r#ref(),
        }
    }
}

/// A whole group left to the services' defaults (the `tuning` groups).
pub(super) fn unset<S: Settings<TaskValue>>() -> S {
    S::from_fn(|_| TaskValue::Unset)
}

/// A task definition's `Environment`, `Secrets` and the secrets' ARNs.
#[derive(Debug, Default)]
pub(super) struct TaskEnvironment {
    pub(super) environment: Vec<(String, Expr)>,
    pub(super) secrets: Vec<(String, Expr)>,
    pub(super) secret_arns: Vec<Expr>,
}

/// Renders a service's settings: plain and secret values in declaration order, each
/// secret's ARN once.
pub(super) fn render(settings: &impl Settings<TaskValue>) -> TaskEnvironment {
    let mut task = TaskEnvironment::default();
    for (var, value) in settings.vars() {
        match value {
            TaskValue::Plain(value) => task.environment.push((var.name().into(), value.clone())),
            TaskValue::Secret { value_from, arn } => {
                task.secrets.push((var.name().into(), value_from.clone()));
                if !task.secret_arns.contains(arn) {
                    task.secret_arns.push(arn.clone());
                }
            }
            TaskValue::Unset => {}
        }
    }
    task
}
