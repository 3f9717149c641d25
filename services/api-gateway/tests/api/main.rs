//! End-to-end tests through the real gateway, auth-service and patient-service.

mod access;
mod accounts;
mod audit;
mod auth;
mod crash;
mod helpers;
mod jwt;
mod metrics;
mod mfa;
mod openapi;
mod patients;
mod pipeline;
mod proxy;
mod security_events;
mod sessions;
mod tls;
mod traces;
mod zero_trust;
