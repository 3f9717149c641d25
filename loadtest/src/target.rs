//! Where the create and list phases go: through the gateway, or (direct mode) straight
//! to patient-service; both with the user's token, which patient-service verifies.

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
        let headers = identity::bearer_headers(token)?;
        Ok(match patient_service {
            None => PatientTarget { via: Via::Gateway, patients_url: format!("{gateway}/api/patients"), headers },
            Some(url) => PatientTarget { via: Via::PatientService, patients_url: format!("{url}/patients"), headers },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_target_uses_gateway_path_or_direct_path_with_the_same_token() {
        let gateway = PatientTarget::new("http://gw", None, "abc.def.ghi").expect("gateway target");
        assert_eq!((gateway.via, gateway.patients_url.as_str()), (Via::Gateway, "http://gw/api/patients"));
        let direct = PatientTarget::new("http://gw", Some("http://ps"), "abc.def.ghi").expect("direct target");
        assert_eq!((direct.via, direct.patients_url.as_str()), (Via::PatientService, "http://ps/patients"));
        for target in [gateway, direct] {
            assert_eq!(target.headers.len(), 1);
            assert_eq!(target.headers.get("authorization").and_then(|v| v.to_str().ok()), Some("Bearer abc.def.ghi"));
        }
    }
}
