//! Delivery to billing-service over gRPC: a batch of account openings in one call,
//! closes one call each, every call with patient-service's service credential, and how
//! billing's answers map to delivery errors.

use std::{sync::Arc, time::Duration};

use prost::Message;
use pulsetrack_common::{
    service_auth::{self, CredentialMinter},
    trace_context,
};
use pulsetrack_proto::billing::{
    BillingBatchItem, BillingBatchRequest, BillingRequest, billing_batch_result::Outcome,
    billing_service_client::BillingServiceClient,
};
use tonic::{
    Code, Request, Status,
    metadata::{MetadataKey, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};

use super::error::DeliveryError;
use crate::{config::BillingTarget, outbox::claim::ClaimedRow};

/// Puts patient-service's service credential for billing-service into every call's
/// `authorization` metadata (one minted credential serves the calls of
/// [`service_auth::REUSE_FOR`]); billing-service refuses a call without it.
#[derive(Clone)]
struct WithCredential(Arc<CredentialMinter>);

impl Interceptor for WithCredential {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let value = self.0.authorization().map_err(|e| Status::internal(e.to_string()))?;
        let value = MetadataValue::try_from(value).map_err(|e| Status::internal(e.to_string()))?;
        request.metadata_mut().insert(service_auth::AUTHORIZATION, value);
        Ok(request)
    }
}

/// billing-service's client, with the deadline of each call.
pub(super) struct Billing {
    client: BillingServiceClient<InterceptedService<Channel, WithCredential>>,
    deadline: Duration,
}

impl Billing {
    /// A client that connects on first use (billing-service may come up after us), over
    /// TLS with the target's, and presents a credential minted with its secret on every
    /// call.
    pub(super) fn connect_lazy(target: &BillingTarget, deadline: Duration) -> anyhow::Result<Self> {
        let mut endpoint = Channel::from_shared(target.url.clone())?;
        if let Some(tls) = &target.tls {
            let pem = tls.pem();
            endpoint = endpoint.tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(&pem.ca))
                    .identity(Identity::from_pem(&pem.cert, pem.key.expose())),
            )?;
        }
        let channel = endpoint
            .connect_timeout(Duration::from_secs(2))
            // The client enforces the deadline too: a silently dropped connection must
            // not hold the dispatcher (and its claims) longer than a lease.
            .timeout(deadline)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .connect_lazy();
        let minter = CredentialMinter::new(&target.secret, crate::SERVICE, service_auth::BILLING_SERVICE);
        let client = BillingServiceClient::with_interceptor(channel, WithCredential(Arc::new(minter)));
        Ok(Self { client, deadline })
    }

    /// Closes a deleted patient's account with one `CloseBillingAccount` call (closes
    /// are rare: one call each, in the delivery's trace).
    pub(super) async fn close_account(&self, row: &ClaimedRow) -> Result<(), DeliveryError> {
        let request =
            BillingRequest::decode(row.payload.as_slice()).map_err(|e| DeliveryError::Reject(e.to_string()))?;
        let mut request = tonic::Request::new(request);
        request.set_timeout(self.deadline);
        // billing-service's span continues this delivery's trace.
        for (key, value) in trace_context::current_fields() {
            if let (Ok(key), Ok(value)) = (MetadataKey::from_bytes(key.as_bytes()), MetadataValue::try_from(value)) {
                request.metadata_mut().insert(key, value);
            }
        }
        match self.client.clone().close_billing_account(request).await {
            Ok(response) => {
                tracing::debug!(patient_id = %row.aggregate_id, account_id = %response.get_ref().account_id,
                    status = %response.get_ref().status, "billing account delivered");
                Ok(())
            }
            Err(status) => Err(classify_status(&status)),
        }
    }

    /// Opens the accounts of `rows` with one `CreateBillingAccounts` call; each item
    /// carries the trace of its delivery span (`spans`, one per row), which
    /// billing-service continues. Returns one outcome per row, in order.
    pub(super) async fn open_accounts(
        &self,
        rows: &[ClaimedRow],
        spans: &[tracing::Span],
    ) -> Vec<Result<(), DeliveryError>> {
        let mut outcomes: Vec<Result<(), DeliveryError>> = Vec::with_capacity(rows.len());
        let mut items = Vec::with_capacity(rows.len());
        let mut sent = Vec::with_capacity(rows.len());
        for (n, (row, span)) in rows.iter().zip(spans).enumerate() {
            match BillingRequest::decode(row.payload.as_slice()) {
                Ok(request) => {
                    let traceparent = span.in_scope(trace_context::current_traceparent).unwrap_or_default();
                    items.push(BillingBatchItem { request: Some(request), traceparent });
                    sent.push(n);
                    outcomes.push(Ok(()));
                }
                Err(e) => outcomes.push(Err(DeliveryError::Reject(e.to_string()))),
            }
        }
        if items.is_empty() {
            return outcomes;
        }
        let mut request = tonic::Request::new(BillingBatchRequest { items });
        request.set_timeout(self.deadline);
        let answer = self.client.clone().create_billing_accounts(request).await;
        let results = match answer {
            Ok(response) if response.get_ref().results.len() == sent.len() => response.into_inner().results,
            Ok(response) => {
                let reason =
                    format!("billing answered {} results for {} items", response.get_ref().results.len(), sent.len());
                for &n in &sent {
                    outcomes[n] = Err(DeliveryError::Retry(reason.clone()));
                }
                return outcomes;
            }
            Err(status) => {
                for &n in &sent {
                    outcomes[n] = Err(classify_status(&status));
                }
                return outcomes;
            }
        };
        for (&n, result) in sent.iter().zip(results) {
            outcomes[n] = match result.outcome {
                Some(Outcome::Account(account)) => {
                    tracing::debug!(patient_id = %rows[n].aggregate_id, account_id = %account.account_id,
                        status = %account.status, "billing account delivered");
                    Ok(())
                }
                Some(Outcome::Invalid(reason)) => Err(DeliveryError::Reject(reason)),
                None => Err(DeliveryError::Retry("billing answered an item without an outcome".into())),
            };
        }
        outcomes
    }
}

/// billing-service's answer: a rejection is final; unreachable, timing out or
/// overloaded is transient; anything else is retried but counts towards dead.
/// A refused credential is transient too: it means the two services disagree on
/// `BILLING_GRPC_SECRET` (one side rotated first), not that the row is bad, so its
/// rows wait (and the outbox's age alarm fires) until both agree, and none goes dead.
fn classify_status(status: &tonic::Status) -> DeliveryError {
    let reason = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        Code::InvalidArgument => DeliveryError::Reject(status.message().to_string()),
        // Cancelled: the channel's own deadline (tonic reports it so) or a dropped connection.
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Cancelled
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Unauthenticated => DeliveryError::Transient(reason),
        _ => DeliveryError::Retry(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_credential_waits_and_a_rejection_is_final() {
        let class = |code: Code| classify_status(&Status::new(code, "m"));
        assert!(matches!(class(Code::Unauthenticated), DeliveryError::Transient(_)));
        assert!(matches!(class(Code::Unavailable), DeliveryError::Transient(_)));
        assert!(matches!(class(Code::InvalidArgument), DeliveryError::Reject(_)));
        assert!(matches!(class(Code::Internal), DeliveryError::Retry(_)));
    }
}
