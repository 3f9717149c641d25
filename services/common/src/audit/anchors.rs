//! Where a trail's anchors are kept (`AUDIT_ANCHORS`): somewhere the service may only
//! add to, outside its database.
//!
//! - `file:<path>`: one JSON line per anchor, appended (`O_APPEND`, mode 0600) to a
//!   file in the service's data folder (`deployer up`).
//! - `s3://<bucket>/<prefix>`: one object per anchor in a bucket with Object Lock
//!   (the stack's), so that not even the service can remove or replace one.

use std::{io::Write, path::PathBuf};

use ed25519_dalek::VerifyingKey;

use super::{
    anchor::{Anchor, AnchorError},
    anchors_s3::S3Anchors,
};
use crate::config::{ConfigError, Raw};

/// The newest anchor of a trail that its service signed, and how many were refused.
#[derive(Debug, Clone, Default)]
pub struct NewestAnchor {
    pub anchor: Option<Anchor>,
    /// Anchors of this service that do not parse or whose signature does not verify.
    pub rejected: u64,
}

impl NewestAnchor {
    /// Keeps `candidate` when it verifies and is newer than what is kept.
    fn offer(&mut self, candidate: Option<Anchor>, service: &str, key: &VerifyingKey) {
        match candidate {
            Some(a) if a.service != service => {}
            Some(a) if a.verifies(key) => {
                if self.anchor.as_ref().is_none_or(|kept| (a.seq, a.at) > (kept.seq, kept.at)) {
                    self.anchor = Some(a);
                }
            }
            _ => self.rejected += 1,
        }
    }
}

/// Where a service's anchors go.
#[derive(Debug)]
pub enum Anchors {
    File(PathBuf),
    S3(S3Anchors),
}

impl Anchors {
    /// `AUDIT_ANCHORS`: required (`file:<path>` or `s3://<bucket>/<prefix>`).
    pub fn from_setting(raw: &Raw) -> Result<Self, ConfigError> {
        let value = raw.optional().ok_or_else(|| {
            raw.error(
                "required: where the audit trail's signed head is kept, `file:<path>` or `s3://<bucket>/<prefix>` \
                 (the stack sets its bucket; `deployer up` a file in its data folder)",
            )
        })?;
        if let Some(path) = value.strip_prefix("file:") {
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                return Err(raw.error("a `file:` anchor path must be absolute"));
            }
            Ok(Self::File(path))
        } else if let Some(rest) = value.strip_prefix("s3://") {
            S3Anchors::parse(rest).map(Self::S3).map_err(|reason| raw.error(reason))
        } else {
            Err(raw.error("must be `file:<absolute path>` or `s3://<bucket>/<prefix>`"))
        }
    }

    /// Appends `anchor`.
    pub async fn append(&self, anchor: &Anchor) -> Result<(), AnchorError> {
        match self {
            Self::File(path) => {
                let path = path.clone();
                let mut line = serde_json::to_vec(anchor).unwrap_or_default();
                line.push(b'\n');
                tokio::task::spawn_blocking(move || append_line(&path, &line))
                    .await
                    .unwrap_or_else(|e| Err(AnchorError::Task(e.to_string())))
            }
            Self::S3(s3) => s3.append(anchor).await,
        }
    }

    /// The newest anchor of `service` that `key` verifies.
    pub async fn newest(&self, service: &str, key: &VerifyingKey) -> Result<NewestAnchor, AnchorError> {
        let mut newest = NewestAnchor::default();
        match self {
            Self::File(path) => {
                let text = match tokio::fs::read_to_string(path).await {
                    Ok(text) => text,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                    Err(source) => return Err(AnchorError::File { path: path.display().to_string(), source }),
                };
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    newest.offer(serde_json::from_str::<Anchor>(line).ok(), service, key);
                }
            }
            Self::S3(s3) => {
                for candidate in s3.newest_candidates(service).await? {
                    newest.offer(candidate, service, key);
                }
            }
        }
        Ok(newest)
    }
}

/// One `write` on a file opened for appending only: concurrent writers (replicas
/// sharing the data folder) never interleave within a line.
fn append_line(path: &std::path::Path, line: &[u8]) -> Result<(), AnchorError> {
    use std::os::unix::fs::OpenOptionsExt;
    let failed = |source| AnchorError::File { path: path.display().to_string(), source };
    let mut file = std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(path).map_err(failed)?;
    file.write_all(line).map_err(failed)?;
    file.sync_data().map_err(failed)
}
