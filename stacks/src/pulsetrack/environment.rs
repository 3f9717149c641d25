//! Each service's settings, every field filled from the stack: what its task
//! definition's environment is rendered from.

use pulsetrack_settings as settings;

use super::{
    context::AccountRole,
    task::{TaskEnvironment, TaskValue, render, unset},
    wiring::Wiring,
};
use crate::monitoring;

/// Each service's settings, every field filled: a variable added to a service's
/// settings does not compile until it is filled here.
pub(super) fn task_environment(w: &mut Wiring<'_, '_>) -> TaskEnvironment {
    match w.def.name {
        "billing-service" => render(&settings::BillingService {
            listen: w.listen(),
            logging: logging(),
            grpc_port: w.grpc_port(),
            database: w.database(),
            audit: w.audit(),
            token_check: token_check(w),
            billing_caller: w.billing_caller(),
            tuning: unset(),
        }),
        "analytics-service" => render(&settings::AnalyticsService {
            listen: w.listen(),
            logging: logging(),
            database: w.database(),
            audit: w.audit(),
            kafka: w.kafka(),
            token_check: token_check(w),
            tuning: unset(),
        }),
        "auth-service" => render(&settings::AuthService {
            listen: w.listen(),
            logging: logging(),
            database: w.database(),
            audit: w.audit(),
            admin: settings::Admin {
                email: TaskValue::plain(w.ctx.admin_email.as_str()),
                password: w.admin_password.clone(),
            },
            gateway_audit_caller: w.gateway_audit_caller(),
            jwt_signing_secret: w.jwt_signing_secret.clone(),
            signup_mode: TaskValue::plain(w.ctx.signup_mode.as_str()),
            password_policy: TaskValue::plain(w.ctx.password_policy.as_str()),
            mfa_encryption_key: w.mfa_encryption_key.clone(),
            require_mfa_roles: roles(&w.ctx.require_mfa_roles),
            tuning: unset(),
        }),
        "patient-service" => render(&settings::PatientService {
            listen: w.listen(),
            logging: logging(),
            database: w.database(),
            audit: w.audit(),
            kafka: w.kafka(),
            token_check: token_check(w),
            billing_grpc_url: w.call("billing-service"),
            billing_caller: w.billing_caller(),
            cloudwatch_metrics_namespace: TaskValue::plain(monitoring::METRICS_NAMESPACE),
            tuning: unset(),
        }),
        "api-gateway" => render(&settings::ApiGateway {
            listen: w.listen(),
            logging: logging(),
            token_check: token_check(w),
            gateway_audit_caller: w.gateway_audit_caller(),
            patient_service_url: w.call("patient-service"),
            billing_service_url: w.call("billing-service"),
            analytics_service_url: w.call("analytics-service"),
            rate_limit_per_second: TaskValue::plain(w.ctx.rate_limit_per_second.to_string()),
            // The ALB's nodes, in the public subnets: X-Forwarded-For only from them.
            trusted_proxies: TaskValue::plain(w.public_cidrs.join(",")),
            tuning: unset(),
        }),
        other => {
            w.error(format!("{other} has no settings"));
            TaskEnvironment::default()
        }
    }
}

/// Where a service finds auth-service's keys and revocation feed (the JWT claims'
/// names and the key source keep their defaults).
fn token_check(w: &mut Wiring<'_, '_>) -> settings::TokenCheck<TaskValue> {
    settings::TokenCheck { auth_service_url: w.call("auth-service"), tuning: unset() }
}

/// A list of roles, comma-separated; none is unset (the service's default: none).
fn roles(roles: &[AccountRole]) -> TaskValue {
    if roles.is_empty() { TaskValue::Unset } else { TaskValue::plain(AccountRole::join(roles)) }
}

fn logging() -> settings::Logging<TaskValue> {
    // No collector runs in the stack (yet): spans are not exported, trace ids are logged.
    settings::Logging {
        format: TaskValue::plain("json"),
        filter: TaskValue::plain("info"),
        otlp_endpoint: TaskValue::Unset,
    }
}
