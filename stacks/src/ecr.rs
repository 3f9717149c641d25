//! ECR repositories for the service images: immutable tags (images are pushed under
//! content tags and referenced by digest), scanned on push, encrypted, with old images
//! expired.

use serde_json::json;

use crate::core::{Expr, Handle, Scope};
use crate::resources as res;

/// How many images a repository keeps; older ones expire.
pub const KEEP_IMAGES: u32 = 30;

pub struct Repository {
    pub id: Handle<res::EcrRepository>,
    pub name: String,
}

impl Repository {
    pub fn new(scope: &mut Scope<'_>, id: &str, name: &str) -> Self {
        let lifecycle = json!({ "rules": [{ "rulePriority": 1, "description": format!("keep the newest {KEEP_IMAGES} images"),
            "selection": { "tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": KEEP_IMAGES },
            "action": { "type": "expire" } }] });
        let repository = scope.add::<res::EcrRepository>(
            id,
            json!({
                "RepositoryName": name,
                "ImageTagMutability": "IMMUTABLE",
                "ImageScanningConfiguration": { "ScanOnPush": true },
                "EncryptionConfiguration": { "EncryptionType": "AES256" },
                "LifecyclePolicy": { "LifecyclePolicyText": lifecycle.to_string() },
                "EmptyOnDelete": true,
            }),
        );
        Self { id: repository, name: name.into() }
    }

    /// `<account>.dkr.ecr.<region>.amazonaws.com/<name>`.
    pub fn uri(&self) -> Expr {
        self.id.attr(res::EcrRepositoryAttr::RepositoryUri)
    }
}
