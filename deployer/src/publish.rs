//! From the workspace's binaries to pushed images: what `images build`, `deploy` and
//! `up --containers` share. The images are built for the task definitions of a
//! synthesized template; what comes back names each image by digest, which the stack
//! model then writes into those task definitions.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context as _;
#[cfg(feature = "aws")]
use aws_config::SdkConfig;
use serde_json::Value;

use crate::images::{
    self, BlobStore, BuiltImage,
    registry::{Credentials, Pushed, Registry, RegistryRef},
};

/// Where the images come from.
#[derive(Debug, Clone)]
pub struct ImageOptions {
    /// Folder of the service binaries (release builds for a deploy).
    pub bin_dir: PathBuf,
    /// The base root filesystem tar.
    pub base: PathBuf,
    /// The OCI image layout the images are written to.
    pub store: PathBuf,
}

/// Built, and pushed when a registry was given.
#[derive(Debug, Clone)]
pub struct Published {
    pub images: BTreeMap<String, BuiltImage>,
    pub pushed: BTreeMap<String, Pushed>,
    pub build_time: Duration,
    pub push_time: Duration,
}

impl Published {
    /// Service → `host/path/service@sha256:…`, for the stack model's task definitions.
    pub fn references(&self) -> BTreeMap<String, String> {
        self.pushed.iter().map(|(service, p)| (service.clone(), p.reference.clone())).collect()
    }

    /// A table: service, digest, size, reference.
    pub fn render(&self) -> String {
        let mut out = format!("{:<18} {:<19} {:>10}  {}\n", "IMAGE", "DIGEST", "SIZE", "PUSHED AS");
        for (service, image) in &self.images {
            let pushed = self.pushed.get(service).map_or_else(|| "-".to_string(), |p| p.reference.clone());
            out.push_str(&format!(
                "{:<18} sha256:{:<12} {:>6.1} MiB  {pushed}\n",
                service,
                image.manifest.digest.short(),
                image.size() as f64 / 1_048_576.0
            ));
        }
        let uploaded: u64 = self.pushed.values().map(|p| p.uploaded).sum();
        out.push_str(&format!(
            "built in {:.1}s; pushed in {:.1}s ({:.1} MiB uploaded)\n",
            self.build_time.as_secs_f64(),
            self.push_time.as_secs_f64(),
            uploaded as f64 / 1_048_576.0
        ));
        out
    }
}

/// Builds the image of every task definition in `template`, and pushes them to
/// `registry` when one is given.
pub async fn publish(
    template: &Value,
    options: &ImageOptions,
    registry: Option<&Registry>,
) -> anyhow::Result<Published> {
    let specs = images::specs(template, &options.bin_dir)?;
    let (store_dir, base) = (options.store.clone(), options.base.clone());
    let (store, images, build_time) = tokio::task::spawn_blocking(move || {
        let store = BlobStore::open(&store_dir)?;
        let (images, took) = images::build_all(&store, &base, &specs)?;
        anyhow::Ok((store, images, took))
    })
    .await??;
    let started = Instant::now();
    let mut pushed = BTreeMap::new();
    if let Some(registry) = registry {
        for (service, image) in &images {
            let result = registry
                .push(&store, image)
                .await
                .with_context(|| format!("pushing {service} to {}", registry.at.host))?;
            pushed.insert(service.clone(), result);
        }
    }
    Ok(Published { images, pushed, build_time, push_time: started.elapsed() })
}

/// A registry given as `-c image-registry=host[:port]/path`, with credentials from
/// `REGISTRY_USERNAME`/`REGISTRY_PASSWORD` when set.
pub fn explicit_registry(text: &str) -> anyhow::Result<Registry> {
    Registry::new(RegistryRef::parse(text)?, Credentials::from_env())
}

#[cfg(feature = "aws")]
/// The registry of the stack's ECR repositories (the outputs of the images stack),
/// signed in with ECR's GetAuthorizationToken.
pub async fn ecr_registry(config: &SdkConfig, repository_uris: &[String]) -> anyhow::Result<Registry> {
    let uri = repository_uris.first().context("the images stack has no repository output")?;
    // `<host>/<prefix>/<service>`: the registry is everything before the service.
    let (prefix, _) = uri.rsplit_once('/').context("a repository URI without a path")?;
    let at = RegistryRef::parse(prefix)?;
    let ecr = aws_sdk_ecr::Client::new(config);
    let token = ecr.get_authorization_token().send().await.map_err(|e| {
        anyhow::anyhow!("ECR GetAuthorizationToken failed: {}", aws_sdk_ecr::error::DisplayErrorContext(e))
    })?;
    let data = token.authorization_data().first().context("ECR returned no authorization data")?;
    let credentials = Credentials::from_ecr_token(data.authorization_token().context("ECR returned no token")?)?;
    Registry::new(at, Some(credentials))
}
