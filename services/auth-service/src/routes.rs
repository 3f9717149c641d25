//! HTTP handlers: signup, login, the public keys, and account roles (ADMIN).

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    Extension, Json, Router,
    extract::{ConnectInfo, Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, StatusCode, header},
    routing::{get, post, put},
};
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use pulsetrack_common::{
    ApiError, FieldError, JsonBody,
    identity::{self, Caller, Permission, Role},
    openapi::{self, BearerAuth},
    rate_limit::{Rate, RateLimiter},
    settings::SignupMode,
    validate::{self, Validator},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    config::LoginThrottleConfig,
    error::Error,
    password,
    repository::{Lockout, User, UserRepository},
    tokens::TokenIssuer,
};

#[derive(Clone)]
pub struct AppState {
    pub users: UserRepository,
    pub tokens: Arc<TokenIssuer>,
    pub signup_mode: SignupMode,
    pub throttle: Arc<LoginThrottle>,
    pub logins: LoginCounter,
}

/// Failed logins, slowed per account ([`Lockout`], in the database) and per client
/// address (a token bucket per address, in memory).
pub struct LoginThrottle {
    pub lockout: Lockout,
    per_address: RateLimiter<IpAddr>,
}

impl LoginThrottle {
    pub fn new(config: &LoginThrottleConfig) -> Self {
        Self {
            lockout: config.lockout,
            per_address: RateLimiter::new(Rate::per_minute(config.failures_per_minute_per_address)),
        }
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "PulseTrack auth", description = "Accounts, logins and roles (auth-service), through the gateway."),
    paths(signup, login, list_users, set_role),
    components(schemas(SignupRequest, LoginRequest, LoginResponse, UserResponse, RoleRequest, Role, ApiError, FieldError)),
    modifiers(&BearerAuth),
    tags((name = "auth", description = "Signup and login are public; accounts and roles are ADMIN's"))
)]
pub struct ApiDoc;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/auth/signup", post(signup))
        .route("/auth/login", post(login))
        .route("/auth/users", get(list_users))
        .route("/auth/users/{id}/role", put(set_role))
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(state)
        .merge(openapi::docs_route(<ApiDoc as utoipa::OpenApi>::openapi()))
}

/// Unknown fields are ignored: the seed's clients send extra ones.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SignupRequest {
    #[schema(schema_with = openapi::email, required = true)]
    email: Option<String>,
    #[schema(schema_with = openapi::text_100, required = true, example = "ada")]
    username: Option<String>,
    /// 8 to 128 characters.
    #[schema(value_type = String, min_length = 8, max_length = 128, required = true, example = "correct-horse-battery")]
    password: Option<String>,
    /// What the signup mode gives when left out; any other role needs an ADMIN's token.
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserResponse {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        Self { id: user.id, email: user.email, username: user.username, role: user.role, created_at: user.created_at }
    }
}

/// The role a self-signed-up account gets in `mode`; `None` when only an ADMIN may
/// create accounts.
pub fn self_signup_role(mode: SignupMode) -> Option<Role> {
    match mode {
        SignupMode::Open => Some(Role::Clinician),
        SignupMode::Approval => Some(Role::User),
        SignupMode::Closed => None,
    }
}

fn parse_role(raw: String) -> Result<Role, String> {
    raw.trim().to_uppercase().parse()
}

/// Creates an account. Public (by the signup mode); an ADMIN's token may create any role.
#[utoipa::path(post, path = "/auth/signup", tag = "auth", request_body = SignupRequest,
    security((), ("bearer" = [])),
    responses((status = 201, body = UserResponse), (status = 400, body = ApiError), (status = 403, body = ApiError),
        (status = 409, body = ApiError), (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
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
    let requested = v.field("role", body.role.map(parse_role).transpose());
    v.finish().map_err(Error::Validation)?;
    let (Some(email), Some(username), Some(password), Some(requested)) = (email, username, password, requested) else {
        return Err(Error::Internal(anyhow::anyhow!("validator passed with a missing field")));
    };
    let by_admin = admin_token(&state, &headers)?;
    let default_role = self_signup_role(state.signup_mode);
    let role = match (requested, default_role) {
        // An ADMIN creates accounts with any role, in every mode.
        (requested, _) if by_admin => requested.unwrap_or(Role::User),
        (_, None) => return Err(Error::SignupClosed),
        (None, Some(default)) => default,
        // Asking for less than the mode gives is always allowed.
        (Some(asked), Some(default)) if asked == default || asked == Role::User => asked,
        (Some(_), Some(_)) => return Err(Error::AdminRequired),
    };
    let hash = password::hash(password).await?;
    let user = state.users.insert(&email, &username, &hash, role).await?;
    tracing::info!(user_id = %user.id, role = %user.role, by_admin, "account created");
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Whether the request carries a valid ADMIN token (a token of another role, or none,
/// is `false`; an invalid one is refused).
fn admin_token(state: &AppState, headers: &HeaderMap) -> Result<bool, Error> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(false) };
    let token = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).ok_or(Error::InvalidToken)?;
    let claims = state.tokens.verify(token.trim()).map_err(|_| Error::InvalidToken)?;
    Ok(claims.role == Role::Admin)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    #[schema(value_type = String, required = true, example = "ada@example.com")]
    email: Option<String>,
    /// At most 128 characters.
    #[schema(value_type = String, max_length = 128, required = true, example = "correct-horse-battery")]
    password: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    pub token: String,
    pub token_type: String,
    pub expires_in: u64,
}

/// The client as the gateway reported it, else the peer (a direct call).
fn client_addr(headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
    identity::client_addr(headers).or(peer.map(|p| p.ip()))
}

#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 429, body = ApiError), (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
/// Counted by outcome (`auth_logins_total`).
async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: JsonBody<LoginRequest>,
) -> Result<Json<LoginResponse>, Error> {
    let result = attempt_login(&state, peer, &headers, body).await;
    let outcome = match &result {
        Ok(_) => "success",
        Err(Error::InvalidCredentials) => "invalid_credentials",
        Err(Error::Throttled(_)) => "throttled",
        Err(Error::Validation(_)) => "invalid_request",
        Err(_) => "error",
    };
    state.logins.get_or_create(&LoginOutcome { outcome }).inc();
    result
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct LoginOutcome {
    outcome: &'static str,
}

/// `auth_logins_total{outcome}`.
pub type LoginCounter =
    prometheus_client::metrics::family::Family<LoginOutcome, prometheus_client::metrics::counter::Counter>;

/// Order matters: the throttles are checked before any hashing, so that a flood of bad
/// logins costs a lookup each, not an argon2 slot.
async fn attempt_login(
    state: &AppState,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Json<LoginResponse>, Error> {
    let mut v = Validator::new();
    let email = v.field("email", validate::required(body.email));
    let password = v.field(
        "password",
        validate::required(body.password).and_then(|p| {
            if p.chars().count() > password::MAX_LEN {
                Err(format!("must be at most {} characters", password::MAX_LEN))
            } else {
                Ok(p)
            }
        }),
    );
    v.finish().map_err(Error::Validation)?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(Error::Internal(anyhow::anyhow!("validator passed with a missing field")));
    };
    let address = client_addr(headers, peer.map(|Extension(ConnectInfo(p))| p));
    if let Some(address) = address {
        state.throttle.per_address.check(&address).map_err(Error::Throttled)?;
    }
    // A malformed email cannot belong to an account: same 401 as an unknown one.
    let account = match validate::email(Some(email)) {
        Ok(email) => state.users.find_for_login(&email).await?,
        Err(_) => None,
    };
    if let Some(until) = account.as_ref().and_then(|a| a.locked_until) {
        let left = (until - Utc::now()).to_std().unwrap_or_default();
        if !left.is_zero() {
            return Err(Error::Throttled(left));
        }
    }
    let verified = password::verify(password, account.as_ref().map(|a| a.user.password_hash.clone())).await?;
    let account = match account {
        Some(account) if verified => account,
        account => {
            if let Some(address) = address {
                state.throttle.per_address.consume(&address);
            }
            if let Some(account) = account {
                let locked = state.users.record_failure(account.user.id, &state.throttle.lockout).await?;
                if let Some(until) = locked {
                    tracing::warn!(user_id = %account.user.id, %until, "account locked after failed logins");
                }
            }
            return Err(Error::InvalidCredentials);
        }
    };
    if account.failures > 0 {
        state.users.clear_failures(account.user.id).await?;
    }
    let user = account.user;
    let token =
        state.tokens.issue(&user.id.to_string(), &user.email, user.role).map_err(|e| Error::Internal(e.into()))?;
    Ok(Json(LoginResponse { token, token_type: "Bearer".into(), expires_in: state.tokens.ttl_seconds() }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only accounts of this role.
    #[param(value_type = Option<Role>)]
    role: Option<String>,
    /// At most this many accounts (1 to 500, default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
}

/// The most accounts one list returns.
pub const MAX_LIST: i64 = 500;

#[utoipa::path(get, path = "/auth/users", tag = "auth", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<UserResponse>), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<UserResponse>>, Error> {
    caller.require(Permission::UsersManage)?;
    let Query(query) = query.map_err(|e| Error::Validation(vec![FieldError::new("query", e.body_text())]))?;
    let mut v = Validator::new();
    let role = v.field("role", query.role.map(parse_role).transpose());
    let limit = v.field(
        "limit",
        query.limit.map_or(Ok(100), |l| {
            l.parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_LIST).contains(n))
                .ok_or_else(|| format!("must be a number from 1 to {MAX_LIST}"))
        }),
    );
    v.finish().map_err(Error::Validation)?;
    let (Some(role), Some(limit)) = (role, limit) else {
        return Err(Error::Internal(anyhow::anyhow!("validator passed with a missing field")));
    };
    let users = state.users.list(role, limit).await?;
    Ok(Json(users.into_iter().map(UserResponse::from).collect()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RoleRequest {
    #[schema(value_type = Role, required = true)]
    role: Option<String>,
}

#[utoipa::path(put, path = "/auth/users/{id}/role", tag = "auth", params(("id" = Uuid, Path)),
    request_body = RoleRequest, security(("bearer" = [])),
    responses((status = 200, body = UserResponse), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError), (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
async fn set_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RoleRequest>,
) -> Result<Json<UserResponse>, Error> {
    caller.require(Permission::UsersManage)?;
    let mut v = Validator::new();
    let id = v.field("id", id.parse::<Uuid>().map_err(|_| "must be a UUID".to_string()));
    let role = v.field("role", validate::required(body.role).and_then(parse_role));
    v.finish().map_err(Error::Validation)?;
    let (Some(id), Some(role)) = (id, role) else {
        return Err(Error::Internal(anyhow::anyhow!("validator passed with a missing field")));
    };
    let admin: Uuid = caller.identity.user_id.parse().map_err(|_| Error::InvalidToken)?;
    // An ADMIN cannot demote itself: the last one would lock everyone out.
    if admin == id {
        return Err(Error::OwnRole);
    }
    let user = state.users.set_role(id, role, admin).await?.ok_or(Error::UserNotFound)?;
    tracing::info!(user_id = %user.id, role = %user.role, changed_by = %admin, "role changed");
    Ok(Json(user.into()))
}

async fn jwks(State(state): State<AppState>) -> Json<JwkSet> {
    Json(state.tokens.jwks().clone())
}
