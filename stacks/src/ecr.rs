//! ECR repositories for the service images: immutable tags (images are pushed under
//! content tags and referenced by digest), scanned on push, encrypted, with old images
//! expired.

use serde_json::json;

use crate::core::{Expr, Handle, Scope};
use crate::resources::{self as res, EncryptionConfiguration, ImageScanningConfiguration, LifecyclePolicy};

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
        let repository = scope.add(
            id,
            res::EcrRepository {
                repository_name: name.into(),
                image_tag_mutability: "IMMUTABLE".into(),
                image_scanning_configuration: ImageScanningConfiguration { scan_on_push: true },
                encryption_configuration: EncryptionConfiguration { encryption_type: "AES256".into() },
                lifecycle_policy: LifecyclePolicy { lifecycle_policy_text: lifecycle.to_string() },
                empty_on_delete: true,
            },
        );
        Self { id: repository, name: name.into() }
    }

    /// `<account>.dkr.ecr.<region>.amazonaws.com/<name>`.
    pub fn uri(&self) -> Expr {
        self.id.attr(res::EcrRepositoryAttr::RepositoryUri)
    }
}
