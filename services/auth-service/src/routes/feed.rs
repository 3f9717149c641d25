//! What the gateways follow: the token verification keys (JWKS) and the revocation
//! feed. The feed is internal: the gateway routes no `/internal` path.

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
};
use jsonwebtoken::jwk::JwkSet;
use pulsetrack_common::{FieldError, revocation::PAGE};
use serde::Deserialize;

use crate::{error::Error, repository::RevocationFeed, state::AppState};

pub(super) async fn jwks(State(state): State<AppState>) -> Json<JwkSet> {
    Json(state.tokens.jwks().clone())
}

#[derive(Debug, Deserialize)]
pub struct RevocationQuery {
    /// The cursor of the previous page (0 at first).
    after: Option<i64>,
}

/// Sessions ended whose tokens may still be unexpired, after the cursor `after`.
pub(super) async fn revocations(
    State(state): State<AppState>,
    query: Result<Query<RevocationQuery>, QueryRejection>,
) -> Result<Json<RevocationFeed>, Error> {
    let Query(query) = query.map_err(|e| Error::Validation(vec![FieldError::new("after", e.body_text())]))?;
    let after = query.after.unwrap_or(0).max(0);
    Ok(Json(state.revocations.after(after, PAGE).await?))
}
