//! Signup: open, by approval or closed ([`SignupMode`]); an ADMIN creates accounts of
//! any role. A public signup answers a taken address and a free one alike.

use std::net::SocketAddr;

use axum::{
    Extension, Json,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use pulsetrack_common::{
    ApiError, JsonBody,
    audit::{Access, Action},
    identity::{Permission, Role},
    openapi,
    settings::SignupMode,
    validate::{self, Validator},
};
use serde::{Deserialize, Serialize};

use super::{UserResponse, missing_field, new_password_grade, parse_role};
use crate::{
    audit::Client,
    authenticated::{Authenticated, bearer},
    error::Error,
    password,
    repository::{NewUser, RepoError},
    state::AppState,
};

/// Unknown fields are ignored: the seed's clients send extra ones.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SignupRequest {
    #[schema(schema_with = openapi::email, required = true)]
    email: Option<String>,
    #[schema(schema_with = openapi::text_100, required = true, example = "ada")]
    username: Option<String>,
    /// 8 to 128 characters; under the `strong` policy also hard to guess, and 12
    /// characters at least for ADMIN and AUDITOR.
    #[schema(value_type = String, min_length = 8, max_length = 128, required = true, example = "correct-horse-battery")]
    password: Option<String>,
    /// What the signup mode gives when left out (or when USER is asked for in
    /// `approval` mode: PENDING); any role above it needs an ADMIN's token.
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
}

/// What a public signup answers, whether or not the address was free.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignupAccepted {
    #[schema(example = "if this address can be used, the account exists now: log in with it")]
    pub message: String,
}

pub const SIGNUP_ACCEPTED: &str = "if this address can be used, the account exists now: log in with it";

/// The role a self-signed-up account gets in `mode`; `None` when only an ADMIN may
/// create accounts.
pub fn self_signup_role(mode: SignupMode) -> Option<Role> {
    match mode {
        SignupMode::Open => Some(Role::User),
        SignupMode::Approval => Some(Role::Pending),
        SignupMode::Closed => None,
    }
}

/// The role a public signup that asked for `asked` gets in a mode that gives `granted`:
/// asking for the ordinary account (USER) or less gets what the mode gives.
fn public_role(asked: Option<Role>, granted: Role) -> Result<Role, Error> {
    match asked {
        None | Some(Role::User) => Ok(granted),
        Some(Role::Pending) => Ok(Role::Pending),
        Some(asked) if asked == granted => Ok(asked),
        Some(_) => Err(Error::AdminRequired),
    }
}

/// Creates an account. Public (by the signup mode): 202 whether or not the address was
/// free, so that signup cannot tell who has an account. With an ADMIN's token: any
/// role, 201 with the account (or 409 for a taken address).
#[utoipa::path(post, path = "/auth/signup", tag = "auth", request_body = SignupRequest,
    security((), ("bearer" = [])),
    responses((status = 202, body = SignupAccepted), (status = 201, description = "Created by an ADMIN", body = UserResponse),
        (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 409, description = "Taken address (ADMIN only)", body = ApiError),
        (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
pub(super) async fn signup(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SignupRequest>,
) -> Result<Response, ApiError> {
    let client = Client::of(&headers, peer.map(|Extension(ConnectInfo(p))| p));
    let mut access = client.did(Action::Signup, None);
    let result = create(&state, &headers, body, &mut access).await;
    let ok = result.as_ref().map_or(StatusCode::OK, Response::status);
    state.recorded(access, ok, result).await
}

/// Creates the account; `access` becomes the ADMIN's when one asked, and names the
/// account created.
async fn create(
    state: &AppState,
    headers: &HeaderMap,
    body: SignupRequest,
    access: &mut Access,
) -> Result<Response, Error> {
    let mut v = Validator::new();
    let email = v.field("email", validate::email(body.email));
    let username = v.field("username", validate::text(body.username, 100));
    let requested = v.field("role", body.role.map(parse_role).transpose());
    let password = v.field("password", validate::required(body.password));
    v.finish().map_err(Error::Validation)?;
    let (Some(email), Some(username), Some(requested), Some(password)) = (email, username, requested, password) else {
        return Err(missing_field());
    };
    // An ADMIN's token (its account's current role decides); any other valid token
    // signs up as anyone would, and an invalid one is refused.
    let by_admin = match bearer(headers)? {
        Some(_) => Some(Authenticated::from_headers(state, headers).await?)
            .filter(|caller| caller.claims.scope.is_full() && caller.user.role.may(Permission::UsersManage)),
        None => None,
    };
    if let Some(admin) = &by_admin {
        *access = Access { subject: access.subject.take(), ..admin.did(Action::Signup) };
    }
    let role = match (&by_admin, self_signup_role(state.signup_mode)) {
        (Some(_), _) => requested.unwrap_or(Role::User),
        (None, None) => return Err(Error::SignupClosed),
        (None, Some(granted)) => public_role(requested, granted)?,
    };
    access.detail = Some(format!("role {role}"));
    let grade = new_password_grade(state, role, &password, [&email, &username], "password").await?;
    let hash = password::hash(password).await?;
    let new = NewUser {
        email: &email,
        username: &username,
        password_hash: &hash,
        password_grade: grade,
        role,
        managed_by_secret: false,
    };
    let inserted = state.users.insert(&new).await;
    match &inserted {
        Ok(user) => access.subject = Some(user.id.to_string()),
        Err(RepoError::EmailTaken) => access.detail = Some(format!("role {role}: the address has an account already")),
        Err(_) => {}
    }
    match (inserted, by_admin) {
        (Ok(user), Some(admin)) => {
            tracing::info!(user_id = %user.id, role = %user.role, created_by = %admin.user.id, "account created");
            Ok((StatusCode::CREATED, Json(UserResponse::from(user))).into_response())
        }
        (Err(e), Some(_)) => Err(e.into()),
        (Ok(user), None) => {
            tracing::info!(user_id = %user.id, role = %user.role, "account signed up");
            Ok(accepted())
        }
        (Err(RepoError::EmailTaken), None) => {
            tracing::info!("signup for an address that has an account: answered as any other");
            Ok(accepted())
        }
        (Err(e), None) => Err(e.into()),
    }
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, Json(SignupAccepted { message: SIGNUP_ACCEPTED.into() })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_modes_give_user_pending_or_nothing() {
        assert_eq!(self_signup_role(SignupMode::Open), Some(Role::User));
        assert_eq!(self_signup_role(SignupMode::Approval), Some(Role::Pending));
        assert_eq!(self_signup_role(SignupMode::Closed), None);
    }

    #[test]
    fn asking_for_user_gets_what_the_mode_gives_and_more_needs_an_admin() {
        assert_eq!(public_role(Some(Role::User), Role::Pending).ok(), Some(Role::Pending));
        assert_eq!(public_role(None, Role::Pending).ok(), Some(Role::Pending));
        assert_eq!(public_role(Some(Role::User), Role::User).ok(), Some(Role::User));
        assert_eq!(public_role(Some(Role::Pending), Role::User).ok(), Some(Role::Pending));
        for above in [Role::Clinician, Role::Billing, Role::Auditor, Role::Admin] {
            assert!(matches!(public_role(Some(above), Role::User), Err(Error::AdminRequired)), "{above}");
        }
    }
}
