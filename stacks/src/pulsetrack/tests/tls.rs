//! Each service's TLS identity, and HTTPS on every hop.

use super::*;

/// Every service's TLS identity comes from its own secret, named by a parameter; the
/// gateway's listener (the ALB's target) asks for no client certificate, every other
/// one does; the ALB reaches the gateway over HTTPS; no task can read another's key.
#[test]
fn every_service_gets_its_own_tls_identity_and_every_hop_is_https() {
    use pulsetrack_settings::{TLS_CA, TLS_CERT, TLS_CLIENT_AUTH, TLS_KEY};
    let stack = stack(&[]);
    let template = stack.synth().expect("valid");
    let containers = crate::ecs::containers(&stack);
    for def in &SERVICES {
        let (parameter, version) = crate::pulsetrack::tls::parameter_ids(def);
        assert_eq!(template["Parameters"][&parameter]["Type"], "String", "{parameter}");
        assert_eq!(template["Parameters"][&version]["Type"], "String", "{version}");
        let container = &containers[def.name];
        for (var, key) in [(TLS_CERT, "cert"), (TLS_KEY, "key"), (TLS_CA, "ca")] {
            let secret = container.secrets.iter().find(|s| s.name == var.name()).expect("a TLS secret");
            let want = Expr::Join(
                ":".into(),
                vec![Expr::Ref(parameter.clone()), key.into(), Expr::lit(""), Expr::Ref(version.clone())],
            );
            assert_eq!(secret.value_from, want, "{} {var}", def.name);
        }
        let auth = container.environment.iter().find(|v| v.name == TLS_CLIENT_AUTH.name()).expect("client auth");
        let want = if def.http_port == GATEWAY_PORT { "none" } else { "required" };
        assert_eq!(auth.value, Expr::lit(want), "{}", def.name);
    }
    // Each execution role may read its own TLS secret and no other service's.
    let text = template.to_string();
    for def in &SERVICES {
        let own = format!("{{\"Ref\":\"{}\"}}", crate::pulsetrack::tls::parameter_ids(def).0);
        let readers = template["Resources"]
            .as_object()
            .expect("resources")
            .values()
            .filter(|r| r["Type"] == "AWS::IAM::Policy" || r["Type"] == "AWS::IAM::Role")
            .filter(|r| r.to_string().contains(&own))
            .count();
        assert_eq!(readers, 1, "{}'s TLS secret is readable by one role", def.name);
    }
    assert!(text.contains("TlsSecretApiGateway"));
    let (_, group) = stack.resources_of::<res::TargetGroup>().next().expect("the ALB's target group");
    assert_eq!((group.protocol.as_str(), group.health_check_protocol.as_str()), ("HTTPS", "HTTPS"));
}
