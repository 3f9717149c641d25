//! `deployer bootstrap`: prepare the assets bucket templates over the inline limit go
//! through (as `cdk bootstrap` does).

use super::{assets_bucket, note_policy};
use crate::{
    assets::INLINE_TEMPLATE_LIMIT,
    error::{Error, Result},
    target::Target,
};

pub async fn run(target: &Target) -> Result<()> {
    let bucket = assets_bucket(target).await?;
    let done = bucket.bootstrap().await.map_err(Error::Aws)?;
    note_policy(&bucket, done);
    println!(
        "assets bucket {} on {} {}: SSE (AES256), versioned, public access blocked{}",
        bucket.name,
        target.describe(),
        if done.created { "created" } else { "already existed; settings applied again" },
        if done.tls_policy { ", TLS-only policy" } else { "" }
    );
    println!("templates over {INLINE_TEMPLATE_LIMIT} bytes are deployed from it (TemplateURL)");
    Ok(())
}
