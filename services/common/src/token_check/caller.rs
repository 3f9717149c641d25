//! The [`Caller`] extractor: a route that takes a `Caller` runs only for a request whose
//! bearer token this service has verified itself, with the [`TokenCheck`] that
//! [`TokenCheck::layer`] put on the router.

use std::sync::Arc;

use axum::{extract::FromRequestParts, http::request::Parts};

use super::TokenCheck;
use crate::{ApiError, identity::Caller};

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(check) = parts.extensions.get::<Arc<TokenCheck>>().cloned() else {
            tracing::error!("a route that needs a caller has no token check installed (TokenCheck::layer)");
            return Err(ApiError::internal());
        };
        let claims = check.full_claims(&parts.headers).await?;
        Ok(Caller::new(claims, &parts.headers))
    }
}
