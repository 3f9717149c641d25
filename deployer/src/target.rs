//! Where the deployer talks to: LocalStack (or a LocalStack-compatible endpoint such
//! as moto), an explicit endpoint, or AWS through the standard credential chain.

use std::{net::ToSocketAddrs, time::Duration};

#[cfg(feature = "aws")]
use aws_config::{BehaviorVersion, Region, SdkConfig};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The standard AWS chain: `AWS_PROFILE`, environment, config files.
    Aws,
    /// An emulator or custom endpoint with `test`/`test` credentials unless set.
    Endpoint(String),
}

const LOCALSTACK_DNS: &str = "localhost.localstack.cloud";

/// `--localstack`: `AWS_ENDPOINT_URL`, else `LOCALSTACK_HOST`, else
/// `http://localhost.localstack.cloud:4566` when that name resolves, else
/// `http://127.0.0.1:4566`.
pub fn localstack_endpoint(env: impl Fn(&str) -> Option<String>) -> String {
    if let Some(url) = env("AWS_ENDPOINT_URL").filter(|v| !v.is_empty()) {
        return url;
    }
    if let Some(host) = env("LOCALSTACK_HOST").filter(|v| !v.is_empty()) {
        let host = if host.contains(':') { host } else { format!("{host}:4566") };
        return if host.starts_with("http") { host } else { format!("http://{host}") };
    }
    if (LOCALSTACK_DNS, 4566).to_socket_addrs().is_ok_and(|mut a| a.next().is_some()) {
        format!("http://{LOCALSTACK_DNS}:4566")
    } else {
        "http://127.0.0.1:4566".into()
    }
}

#[cfg(feature = "aws")]
fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Target::Aws => "AWS".into(),
            Target::Endpoint(url) => url.clone(),
        }
    }

    #[cfg(feature = "aws")]
    pub async fn sdk_config(&self) -> SdkConfig {
        let loader = aws_config::defaults(BehaviorVersion::latest());
        match self {
            Target::Aws => loader.load().await,
            Target::Endpoint(url) => {
                let region =
                    env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".into());
                let mut loader = loader.region(Region::new(region)).endpoint_url(url);
                if env("AWS_ACCESS_KEY_ID").is_none() {
                    loader = loader.credentials_provider(aws_sdk_cloudformation::config::Credentials::new(
                        "test",
                        "test",
                        None,
                        None,
                        "localstack",
                    ));
                }
                loader.load().await
            }
        }
    }

    /// Whether the endpoint is moto, whose CloudFormation lacks Cloud Map (and
    /// Secrets Manager and MSK resources): the deployer then says so and adapts.
    pub async fn is_moto(&self) -> bool {
        let Target::Endpoint(url) = self else { return false };
        let Ok(client) = reqwest::Client::builder().timeout(Duration::from_secs(3)).build() else { return false };
        client
            .get(format!("{}/moto-api/", url.trim_end_matches('/')))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }
}

impl Target {
    /// Wipes a moto server's whole state (`POST /moto-api/reset`): the only way to
    /// remove what its delete-stack leaves behind. Callers check `is_moto` first.
    pub async fn moto_reset(&self) -> anyhow::Result<()> {
        let Target::Endpoint(url) = self else { anyhow::bail!("--moto-reset is only for a moto endpoint") };
        let response =
            reqwest::Client::new().post(format!("{}/moto-api/reset", url.trim_end_matches('/'))).send().await?;
        anyhow::ensure!(response.status().is_success(), "moto reset answered {}", response.status());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localstack_endpoint_precedence() {
        let from = |pairs: &'static [(&str, &str)]| {
            localstack_endpoint(|k| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| v.to_string()))
        };
        assert_eq!(from(&[("AWS_ENDPOINT_URL", "http://e:1"), ("LOCALSTACK_HOST", "h")]), "http://e:1");
        assert_eq!(from(&[("LOCALSTACK_HOST", "ls")]), "http://ls:4566");
        assert_eq!(from(&[("LOCALSTACK_HOST", "ls:4567")]), "http://ls:4567");
        let fallback = from(&[]);
        assert!(fallback == "http://localhost.localstack.cloud:4566" || fallback == "http://127.0.0.1:4566");
    }
}
