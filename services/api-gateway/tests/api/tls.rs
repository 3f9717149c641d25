//! Every hop over TLS, as in the cloud: the gateway's listener (what the ALB's HTTPS
//! target group reaches) presents a certificate and asks for none; every other
//! service's listener, billing's gRPC port included, asks its callers for a
//! certificate of the internal CA (mutual TLS); every client verifies the server's
//! certificate against that CA. One test CA stands for the deployer's.

use std::time::Duration;

use pulsetrack_common::{
    healthcheck,
    settings::TlsClientAuth,
    testing::TestCa,
    tls::{TlsConfig, TlsPem},
};
use reqwest::{Certificate, Client, Identity, Method, StatusCode};

use crate::helpers::{GatewayOverrides, TestStack, eventually, json_of, patient_body, spawn_stack_with};

async fn spawn_tls_stack() -> TestStack {
    spawn_stack_with(GatewayOverrides { tls: true, kafka: true, ..Default::default() }).await
}

fn ca(stack: &TestStack) -> &TestCa {
    stack.ca.as_ref().expect("a TLS stack")
}

/// A client that trusts `trusted` and presents `identity`'s certificate, if any.
fn client(trusted: &TestCa, identity: Option<&TestCa>) -> Client {
    let mut builder = Client::builder()
        .timeout(Duration::from_secs(10))
        .tls_built_in_root_certs(false)
        .add_root_certificate(Certificate::from_pem(trusted.ca_pem.as_bytes()).expect("CA"));
    if let Some(issuer) = identity {
        let pem = issuer.identity();
        let both = format!("{}{}", pem.cert, pem.key.expose());
        builder = builder.identity(Identity::from_pem(both.as_bytes()).expect("identity"));
    }
    builder.build().expect("client")
}

#[tokio::test]
async fn the_whole_path_works_with_tls_on_every_hop() {
    let stack = spawn_tls_stack().await;
    assert!(stack.gateway.starts_with("https://") && stack.patient.starts_with("https://"));
    // gateway -> auth-service (signup, login), every service -> auth-service (keys, feed).
    let user = stack.user_token("tls-user@example.com").await;
    let admin = stack.admin_token().await;
    let created = stack.create_patient(&user, &patient_body("tls-patient@example.com")).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let patient = json_of(created).await["id"].as_str().expect("id").to_string();
    // patient-service -> billing-service over gRPC with TLS; gateway -> billing-service.
    let account = eventually("the billing account over TLS", Duration::from_secs(60), || async {
        let response = stack.authed(Method::GET, &format!("/api/billing/accounts/{patient}"), &admin, None).await;
        (response.status() == StatusCode::OK).then_some(())
    });
    account.await;
    // gateway -> analytics-service.
    let summary = stack.authed(Method::GET, "/api/analytics/summary", &admin, None).await;
    assert_eq!(summary.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_service_refuses_a_client_it_cannot_verify() {
    let stack = spawn_tls_stack().await;
    let ca = ca(&stack);
    let health = format!("{}/health", stack.patient);
    let trusted = client(ca, Some(ca)).get(&health).send().await.expect("a certificate of the CA is accepted");
    assert_eq!(trusted.status(), StatusCode::OK);
    let no_certificate = client(ca, None).get(&health).send().await;
    assert!(no_certificate.is_err(), "no client certificate: {no_certificate:?}");
    let stranger = TestCa::new();
    let other_ca = client(ca, Some(&stranger)).get(&health).send().await;
    assert!(other_ca.is_err(), "a certificate of another CA: {other_ca:?}");
    let plain = stack.client.get(health.replace("https://", "http://")).send().await;
    assert!(plain.is_err_and(|e| !e.is_status()), "plain HTTP to a TLS port gets no answer");
    // The gateway asks for no certificate: the ALB presents none.
    let gateway = client(ca, None).get(format!("{}/health", stack.gateway)).send().await.expect("gateway");
    assert_eq!(gateway.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_client_refuses_a_server_it_cannot_verify() {
    let stack = spawn_tls_stack().await;
    let ca = ca(&stack);
    let stranger = TestCa::new();
    // Each client below presents a good certificate of the stack's CA, so the service
    // accepts it: only the client's own check of the server's certificate can fail.
    let trusting_the_stranger = |client_auth| {
        let pem = TlsPem { ca: stranger.ca_pem.clone(), ..ca.identity() };
        TlsConfig::from_pem(pem, client_auth).expect("identity")
    };
    let health = format!("{}/health", stack.patient);
    assert_eq!(client(ca, Some(ca)).get(&health).send().await.expect("trusted").status(), StatusCode::OK);
    let refused = client(&stranger, Some(ca)).get(&health).send().await;
    assert!(refused.is_err(), "a caller that trusts another CA: {refused:?}");
    // So does a service's own client: the health check.
    let addr: std::net::SocketAddr = stack.patient.trim_start_matches("https://").parse().expect("addr");
    let (own, other) = (ca.tls(TlsClientAuth::Required), trusting_the_stranger(TlsClientAuth::Required));
    let (own_probe, other_probe, plain_probe) = tokio::task::spawn_blocking(move || {
        (healthcheck::probe(addr, Some(&own)), healthcheck::probe(addr, Some(&other)), healthcheck::probe(addr, None))
    })
    .await
    .expect("probes");
    assert!(own_probe, "the health check with the service's own identity");
    assert!(!other_probe && !plain_probe, "a health check that trusts another CA, or plain HTTP");
    // And a gateway that trusts another CA verifies no service: not even auth-service's
    // keys, so it cannot check a token and is never ready.
    let mut config = stack.gateway_config.clone();
    config.listen = pulsetrack_common::config::ListenConfig {
        tls: Some(trusting_the_stranger(TlsClientAuth::None)),
        ..config.listen
    };
    config.listen.port = 0;
    let gateway = api_gateway::Application::build(config).await.expect("gateway starts");
    let base = format!("https://{}", gateway.local_addr());
    tokio::spawn(gateway.run_until(std::future::pending()));
    let admin = stack.admin_token().await;
    let response = client(ca, None).get(format!("{base}/api/patients")).bearer_auth(admin).send().await;
    let status = response.expect("the gateway answers").status();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "no keys could be read from auth-service");
    let ready = client(ca, None).get(format!("{base}/ready")).send().await.expect("ready answers");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}
