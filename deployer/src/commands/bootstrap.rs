//! `deployer bootstrap`: prepare the assets bucket templates over the inline limit go
//! through (as `cdk bootstrap` does).

use super::assets_bucket;
use crate::{
    assets::INLINE_TEMPLATE_LIMIT,
    error::{Error, Result},
    target::Target,
};

pub async fn run(target: &Target) -> Result<()> {
    let bucket = assets_bucket(target).await?;
    let existed = bucket.exists().await.map_err(Error::Aws)?;
    bucket.bootstrap().await.map_err(Error::Aws)?;
    println!(
        "assets bucket {} on {} {}: SSE (AES256), versioned, public access blocked, TLS-only policy",
        bucket.name,
        target.describe(),
        if existed { "already existed; settings applied again" } else { "created" }
    );
    println!("templates over {INLINE_TEMPLATE_LIMIT} bytes are deployed from it (TemplateURL)");
    Ok(())
}
