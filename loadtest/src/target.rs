//! Where the create and list phases go: through the gateway with the user's token, or
//! (direct mode) straight to patient-service with the headers the gateway would forward.

use anyhow::Context;
use reqwest::header::HeaderMap;

use crate::{identity, report::Via};

/// Where the create and list phases go, and the headers that authenticate them there.
pub struct PatientTarget {
    pub via: Via,
    /// The patient collection: `{gateway}/api/patients` or `{patient-service}/patients`.
    pub patients_url: String,
    pub headers: HeaderMap,
}

impl PatientTarget {
    pub fn new(gateway: &str, patient_service: Option<&str>, token: &str) -> anyhow::Result<Self> {
        Ok(match patient_service {
            None => PatientTarget {
                via: Via::Gateway,
                patients_url: format!("{gateway}/api/patients"),
                headers: identity::bearer_headers(token)?,
            },
            Some(url) => {
                let claims = identity::unverified_claims(token).context("reading the login token for direct mode")?;
                PatientTarget {
                    via: Via::PatientService,
                    patients_url: format!("{url}/patients"),
                    headers: identity::forwarded_headers(token, &claims)?,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn patient_target_uses_gateway_path_or_direct_path_and_headers() {
        let gateway = PatientTarget::new("http://gw", None, "not-even-a-jwt").expect("gateway target");
        assert_eq!((gateway.via, gateway.patients_url.as_str()), (Via::Gateway, "http://gw/api/patients"));
        assert_eq!(gateway.headers.len(), 1);
        // Direct mode needs claims to forward.
        assert!(PatientTarget::new("http://gw", Some("http://ps"), "not-even-a-jwt").is_err());

        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        let claims = json!({"sub": "u-1", "email": "a@example.com", "role": "USER",
                            "sid": "6f1c2a4e-93d1-4b8e-a2f0-5c7d9e1b3a42", "iat": 1, "exp": 2, "iss": "i", "aud": "a"});
        let token = format!("h.{}.s", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let direct = PatientTarget::new("http://gw", Some("http://ps"), &token).expect("direct target");
        assert_eq!((direct.via, direct.patients_url.as_str()), (Via::PatientService, "http://ps/patients"));
        assert_eq!(direct.headers.get("x-user-id").and_then(|v| v.to_str().ok()), Some("u-1"));
        assert_eq!(direct.headers.get("x-user-role").and_then(|v| v.to_str().ok()), Some("USER"));
        let session = direct.headers.get("x-session-id").and_then(|v| v.to_str().ok());
        assert_eq!(session, Some("6f1c2a4e-93d1-4b8e-a2f0-5c7d9e1b3a42"));
    }
}
