//! HTTP handlers: signup, login and the public keys.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    routing::{get, post},
};
use jsonwebtoken::jwk::JwkSet;
use pulsetrack_common::{
    JsonBody,
    identity::Role,
    validate::{self, Validator},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{error::Error, password, repository::UserRepository, tokens::TokenIssuer};

#[derive(Clone)]
pub struct AppState {
    pub users: UserRepository,
    pub tokens: Arc<TokenIssuer>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/auth/signup", post(signup))
        .route("/auth/login", post(login))
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(state)
}

/// Unknown fields are ignored: the seed's clients send extra ones.
#[derive(Debug, Deserialize)]
pub struct SignupRequest {
    email: Option<String>,
    username: Option<String>,
    password: Option<String>,
    role: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UserResponse {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub role: Role,
}

async fn signup(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SignupRequest>,
) -> Result<(StatusCode, Json<UserResponse>), Error> {
    let mut v = Validator::new();
    let email = v.field("email", validate::email(body.email));
    let username = v.field("username", validate::text(body.username, 100));
    let password =
        v.field("password", validate::required(body.password).and_then(|p| password::check_policy(&p).map(|()| p)));
    let role = v.field("role", body.role.map_or(Ok(Role::User), |r| r.trim().to_uppercase().parse()));
    v.finish().map_err(Error::Validation)?;
    let (Some(email), Some(username), Some(password), Some(role)) = (email, username, password, role) else {
        return Err(Error::Internal(anyhow::anyhow!("validator passed with a missing field")));
    };
    // Any role but the default needs an ADMIN's token.
    if role != Role::User {
        authorize_admin(&state, &headers)?;
    }
    let hash = password::hash(password).await?;
    let user = state.users.insert(&email, &username, &hash, role).await?;
    tracing::info!(user_id = %user.id, role = %user.role, "account created");
    Ok((
        StatusCode::CREATED,
        Json(UserResponse { id: user.id, email: user.email, username: user.username, role: user.role }),
    ))
}

/// Admin accounts may only be created by a caller holding a valid ADMIN token.
fn authorize_admin(state: &AppState, headers: &HeaderMap) -> Result<(), Error> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(Error::AdminRequired)?;
    let claims = state.tokens.verify(token.trim()).map_err(|_| Error::InvalidToken)?;
    if claims.role == Role::Admin { Ok(()) } else { Err(Error::AdminRequired) }
}

#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    email: Option<String>,
    password: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    pub token: String,
    pub token_type: String,
    pub expires_in: u64,
}

async fn login(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Json<LoginResponse>, Error> {
    let mut v = Validator::new();
    let email = v.field("email", validate::required(body.email));
    let password = v.field("password", validate::required(body.password));
    v.finish().map_err(Error::Validation)?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(Error::Internal(anyhow::anyhow!("validator passed with a missing field")));
    };
    // A malformed email cannot belong to an account: same 401 as an unknown one.
    let user = match validate::email(Some(email)) {
        Ok(email) => state.users.find_by_email(&email).await?,
        Err(_) => None,
    };
    let verified = password::verify(password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    let Some(user) = user.filter(|_| verified) else {
        return Err(Error::InvalidCredentials);
    };
    let token =
        state.tokens.issue(&user.id.to_string(), &user.email, user.role).map_err(|e| Error::Internal(e.into()))?;
    Ok(Json(LoginResponse { token, token_type: "Bearer".into(), expires_in: state.tokens.ttl_seconds() }))
}

async fn jwks(State(state): State<AppState>) -> Json<JwkSet> {
    Json(state.tokens.jwks().clone())
}
