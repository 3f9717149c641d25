//! Pushing images through the OCI distribution API: blobs that the registry lacks are
//! mounted from a repository that has them or uploaded (`POST` then `PUT ?digest=`),
//! then the manifest is put under a tag derived
//! from its content. Speaks plain HTTP to loopback registries (as Docker does) and
//! HTTPS elsewhere; authenticates with Basic credentials or a Bearer token from the
//! registry's `WWW-Authenticate` challenge (ECR, GHCR, Docker Distribution).

use std::{collections::BTreeMap, net::ToSocketAddrs, sync::Mutex, time::Duration};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use reqwest::{Method, StatusCode, header};

use super::{BlobStore, BuiltImage, Descriptor, Digest, MANIFEST_MEDIA_TYPE};

/// Registry credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

impl Credentials {
    /// `REGISTRY_USERNAME` / `REGISTRY_PASSWORD`, when both are set.
    pub fn from_env() -> Option<Self> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Some(Self { username: get("REGISTRY_USERNAME")?, password: get("REGISTRY_PASSWORD")? })
    }

    /// An ECR authorization token: base64 of `AWS:<password>`.
    pub fn from_ecr_token(token: &str) -> anyhow::Result<Self> {
        let decoded = base64::engine::general_purpose::STANDARD.decode(token).context("ECR token is not base64")?;
        let text = String::from_utf8(decoded).context("ECR token is not text")?;
        let (username, password) = text.split_once(':').context("ECR token is not user:password")?;
        Ok(Self { username: username.into(), password: password.into() })
    }
}

/// Where images go: `host[:port]/path`, e.g. `127.0.0.1:5000/pulsetrack` or
/// `123456789012.dkr.ecr.eu-west-1.amazonaws.com/pulsetrack`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    pub host: String,
    /// Repository path prefix (may be empty).
    pub prefix: String,
}

impl RegistryRef {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim().trim_end_matches('/');
        let text = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://")).unwrap_or(text);
        let (host, prefix) = text.split_once('/').unwrap_or((text, ""));
        if !(host.contains('.') || host.contains(':') || host == "localhost") {
            bail!(
                "image-registry {text:?} names no registry host (Docker Hub is not used): give host[:port]/path, \
                 e.g. 127.0.0.1:5000/pulsetrack or an ECR repository URI"
            );
        }
        if prefix.chars().any(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))) {
            bail!("image-registry path {prefix:?}: lowercase letters, digits and . _ - / only");
        }
        Ok(Self { host: host.into(), prefix: prefix.into() })
    }

    pub fn repository(&self, service: &str) -> String {
        if self.prefix.is_empty() { service.into() } else { format!("{}/{service}", self.prefix) }
    }

    /// `host/path/service@sha256:…`: how task definitions name an image.
    pub fn by_digest(&self, service: &str, digest: &Digest) -> String {
        format!("{}/{}@{digest}", self.host, self.repository(service))
    }

    /// Whether the host is this machine (then plain HTTP, as Docker allows).
    pub fn is_loopback(&self) -> bool {
        let host = self.host.rsplit_once(':').map_or(self.host.as_str(), |(h, _)| h);
        if host == "localhost" {
            return true;
        }
        (host, 0).to_socket_addrs().is_ok_and(|mut addrs| addrs.all(|a| a.ip().is_loopback()))
    }
}

/// The tag an image is pushed under: derived from its content, never moved.
pub fn content_tag(manifest: &Digest) -> String {
    format!("sha256-{}", manifest.short())
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `host/path/service@sha256:…`
    pub reference: String,
    pub tag: String,
    pub uploaded: u64,
    pub already_there: usize,
}

/// A registry client.
pub struct Registry {
    pub at: RegistryRef,
    base: String,
    client: reqwest::Client,
    credentials: Option<Credentials>,
    /// Authorization header value per repository (Basic or Bearer), once challenged.
    auth: Mutex<BTreeMap<String, String>>,
    /// A repository known to hold each blob, to mount shared layers from.
    holders: Mutex<BTreeMap<Digest, String>>,
}

impl Registry {
    pub fn new(at: RegistryRef, credentials: Option<Credentials>) -> anyhow::Result<Self> {
        let scheme = if at.is_loopback() { "http" } else { "https" };
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .user_agent(concat!("pulsetrack-deployer/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            base: format!("{scheme}://{}", at.host),
            at,
            client,
            credentials,
            auth: Mutex::new(BTreeMap::new()),
            holders: Mutex::new(BTreeMap::new()),
        })
    }

    fn cached_auth(&self, repository: &str) -> Option<String> {
        self.auth.lock().ok().and_then(|m| m.get(repository).cloned())
    }

    /// Sends a request, answering one authentication challenge if the registry asks.
    async fn send(
        &self,
        repository: &str,
        method: Method,
        url: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> anyhow::Result<reqwest::Response> {
        let request = |auth: Option<String>| {
            let mut r = self.client.request(method.clone(), url);
            if let Some(auth) = auth {
                r = r.header(header::AUTHORIZATION, auth);
            }
            if let Some((content_type, bytes)) = &body {
                r = r.header(header::CONTENT_TYPE, *content_type).body(bytes.clone());
            } else if method == Method::POST || method == Method::PUT {
                r = r.header(header::CONTENT_LENGTH, 0);
            }
            r
        };
        let response = request(self.cached_auth(repository))
            .send()
            .await
            .with_context(|| format!("{method} {url}: registry {} did not answer", self.at.host))?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let auth = self.answer(repository, &challenge).await?;
        if let Ok(mut cache) = self.auth.lock() {
            cache.insert(repository.into(), auth.clone());
        }
        let response = request(Some(auth)).send().await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            bail!("registry {} refused the credentials for {repository}", self.at.host);
        }
        Ok(response)
    }

    fn basic(&self) -> Option<String> {
        self.credentials.as_ref().map(|c| {
            let raw = format!("{}:{}", c.username, c.password);
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
        })
    }

    /// The Authorization value for a `WWW-Authenticate` challenge.
    async fn answer(&self, repository: &str, challenge: &str) -> anyhow::Result<String> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => self.basic().with_context(|| {
                format!("registry {} asks for credentials: set REGISTRY_USERNAME and REGISTRY_PASSWORD", self.at.host)
            }),
            "bearer" => {
                let params = challenge_params(params);
                let realm = params.get("realm").context("Bearer challenge without realm")?;
                let mut query = vec![("scope".to_string(), format!("repository:{repository}:pull,push"))];
                if let Some(service) = params.get("service") {
                    query.push(("service".into(), service.clone()));
                }
                let mut request = self.client.get(realm).query(&query);
                if let Some(basic) = self.basic() {
                    request = request.header(header::AUTHORIZATION, basic);
                }
                let response = request.send().await.with_context(|| format!("token service {realm}"))?;
                if !response.status().is_success() {
                    bail!("token service {realm} answered {}", response.status());
                }
                let body: serde_json::Value = response.json().await?;
                let token = body["token"].as_str().or(body["access_token"].as_str()).context("no token in answer")?;
                Ok(format!("Bearer {token}"))
            }
            _ => bail!("registry {} asks for unsupported authentication {challenge:?}", self.at.host),
        }
    }

    async fn has_blob(&self, repository: &str, digest: &Digest) -> anyhow::Result<bool> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let response = self.send(repository, Method::HEAD, &url, None).await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => bail!("HEAD {url}: {s}"),
        }
    }

    /// Uploads a blob; when `mount_from` (another repository of this registry) holds
    /// it, asks the registry to mount it from there instead (no bytes sent).
    async fn upload_blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        store: &BlobStore,
        mount_from: Option<&str>,
    ) -> anyhow::Result<u64> {
        let mut url = format!("{}/v2/{repository}/blobs/uploads/", self.base);
        if let Some(from) = mount_from {
            url.push_str(&format!("?mount={}&from={from}", descriptor.digest));
        }
        let started = self.send(repository, Method::POST, &url, None).await?;
        if mount_from.is_some() && started.status() == StatusCode::CREATED {
            return Ok(0);
        }
        let bytes = store.read(&descriptor.digest)?;
        if started.status() != StatusCode::ACCEPTED {
            let status = started.status();
            bail!("POST {url}: {status}: {}", started.text().await.unwrap_or_default());
        }
        let location = started
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .context("upload started without a Location")?;
        let location =
            if location.starts_with("http") { location.to_string() } else { format!("{}{location}", self.base) };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{separator}digest={}", descriptor.digest);
        let done = self.send(repository, Method::PUT, &put, Some(("application/octet-stream", bytes))).await?;
        if done.status() != StatusCode::CREATED {
            let status = done.status();
            bail!(
                "uploading {} to {repository}: {status}: {}",
                descriptor.digest,
                done.text().await.unwrap_or_default()
            );
        }
        Ok(descriptor.size)
    }

    /// Pushes `image` from `store` as `<prefix>/<service>`, tagged by its content.
    pub async fn push(&self, store: &BlobStore, image: &BuiltImage) -> anyhow::Result<Pushed> {
        let repository = self.at.repository(&image.service);
        let mut uploaded = 0;
        let mut already_there = 0;
        let blobs = image.layers.iter().map(|l| &l.descriptor).chain(std::iter::once(&image.config));
        for descriptor in blobs {
            if self.has_blob(&repository, &descriptor.digest).await? {
                already_there += 1;
            } else {
                let from = self.holders.lock().ok().and_then(|h| h.get(&descriptor.digest).cloned());
                uploaded += self.upload_blob(&repository, descriptor, store, from.as_deref()).await?;
            }
            if let Ok(mut holders) = self.holders.lock() {
                holders.entry(descriptor.digest.clone()).or_insert_with(|| repository.clone());
            }
        }
        let tag = content_tag(&image.manifest.digest);
        let url = format!("{}/v2/{repository}/manifests/{tag}", self.base);
        let manifest = store.read(&image.manifest.digest)?;
        let response = self.send(&repository, Method::PUT, &url, Some((MANIFEST_MEDIA_TYPE, manifest))).await?;
        if response.status() != StatusCode::CREATED {
            let status = response.status();
            bail!("PUT {url}: {status}: {}", response.text().await.unwrap_or_default());
        }
        if let Some(digest) = response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok())
            && digest != image.manifest.digest.as_str()
        {
            bail!("registry {} stored {repository} as {digest}, not {}", self.at.host, image.manifest.digest);
        }
        Ok(Pushed {
            reference: self.at.by_digest(&image.service, &image.manifest.digest),
            tag,
            uploaded,
            already_there,
        })
    }
}

/// `realm="https://…",service="…",scope="…"` → map.
fn challenge_params(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            quoted.split_once('"').unwrap_or((quoted, ""))
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        out.insert(key, value.to_string());
        rest = next.trim_start_matches(',').trim();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_references_are_parsed() {
        let r = RegistryRef::parse("127.0.0.1:5000/pulsetrack/").expect("ok");
        assert_eq!(r, RegistryRef { host: "127.0.0.1:5000".into(), prefix: "pulsetrack".into() });
        assert!(r.is_loopback());
        let d = Digest::of(b"x");
        assert_eq!(r.by_digest("auth-service", &d), format!("127.0.0.1:5000/pulsetrack/auth-service@{d}"));
        let ecr = RegistryRef::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com").expect("ok");
        assert_eq!(ecr.repository("api-gateway"), "api-gateway");
        assert!(RegistryRef::parse("pulsetrack").expect_err("no host").to_string().contains("no registry host"));
        assert!(RegistryRef::parse("localhost:5000/Upper").is_err());
        assert_eq!(content_tag(&d), format!("sha256-{}", d.short()));
    }

    #[test]
    fn bearer_challenges_are_read() {
        let p = challenge_params(
            r#"realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#,
        );
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["service"], "registry.example");
        assert_eq!(p["scope"], "repository:a:pull");
    }

    #[test]
    fn ecr_tokens_decode_and_secrets_stay_out_of_debug() {
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:s3cret");
        let c = Credentials::from_ecr_token(&token).expect("token");
        assert_eq!(c.username, "AWS");
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
