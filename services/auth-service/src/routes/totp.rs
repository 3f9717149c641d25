//! The second factor: TOTP enrolment (a secret, then a first code that confirms it and
//! earns ten recovery codes), and the check a login of an enrolled account must pass.

use axum::{Json, extract::State, http::StatusCode};
use pulsetrack_common::{
    ApiError, FieldError, JsonBody,
    audit::Action,
    validate::{self, Validator},
};
use serde::{Deserialize, Serialize};

use super::missing_field;
use crate::{
    authenticated::{AnyScope, Authenticated},
    error::Error,
    mfa::{self, TotpSecret, recovery},
    repository::User,
    state::AppState,
};

/// The issuer an authenticator app shows beside the account.
const ISSUER: &str = "PulseTrack";

/// A new secret to put into an authenticator app.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotpEnrolment {
    /// RFC 4648 base32, to type in.
    pub secret: String,
    /// The Key Uri Format (`otpauth://totp/...`), to show as a QR code.
    pub otpauth_uri: String,
}

#[utoipa::path(post, path = "/auth/me/totp", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = TotpEnrolment), (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 409, description = "Already enrolled", body = ApiError),
        (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
/// Starts (or starts again) an enrolment: a new secret, sealed at rest; the second
/// factor is required only once a code of it is verified.
pub(super) async fn enrol(
    State(state): State<AppState>,
    AnyScope(caller): AnyScope,
) -> Result<Json<TotpEnrolment>, ApiError> {
    let result = start(&state, &caller).await;
    let access = caller.did(Action::TotpEnrol).detail("enrolment started");
    state.recorded(access, StatusCode::OK, result).await.map(Json)
}

async fn start(state: &AppState, caller: &Authenticated) -> Result<TotpEnrolment, Error> {
    let seal = state.mfa.seal.as_ref().ok_or(Error::MfaUnavailable)?;
    let user = &caller.user;
    if user.totp_enrolled {
        return Err(Error::AlreadyEnrolled);
    }
    let secret = TotpSecret::generate();
    if !state.mfa.totp.start(user.id, &seal.seal(secret.as_bytes(), user.id.as_bytes())).await? {
        return Err(Error::AlreadyEnrolled);
    }
    tracing::info!(user_id = %user.id, "TOTP enrolment started");
    Ok(TotpEnrolment { secret: secret.base32(), otpauth_uri: mfa::otpauth_uri(&secret, ISSUER, &user.email) })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TotpCode {
    /// The 6 digits the app shows now.
    #[schema(value_type = String, required = true, example = "123456")]
    code: Option<String>,
}

/// Single-use codes for when the authenticator is lost; shown once.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

#[utoipa::path(post, path = "/auth/me/totp/verify", tag = "auth", request_body = TotpCode, security(("bearer" = [])),
    responses((status = 200, body = RecoveryCodes), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 409, description = "Not started, or already enrolled", body = ApiError),
        (status = "default", description = "Any other error (429, 503 ...), with the same body", body = ApiError)))]
/// Confirms the enrolment with a first code; from now on a login needs a code.
pub(super) async fn verify(
    State(state): State<AppState>,
    AnyScope(caller): AnyScope,
    JsonBody(body): JsonBody<TotpCode>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let result = confirm(&state, &caller, body).await;
    let access = caller.did(Action::TotpEnrol).detail("enrolment confirmed with a first code");
    state.recorded(access, StatusCode::OK, result).await.map(Json)
}

async fn confirm(state: &AppState, caller: &Authenticated, body: TotpCode) -> Result<RecoveryCodes, Error> {
    let mut v = Validator::new();
    let code = v.field("code", validate::required(body.code));
    v.finish().map_err(Error::Validation)?;
    let Some(code) = code else { return Err(missing_field()) };
    let user = &caller.user;
    if user.totp_enrolled {
        return Err(Error::AlreadyEnrolled);
    }
    let (secret, sealed) = secret_of(state, user).await?.ok_or(Error::NotEnrolling)?;
    let wrong = || Error::Validation(vec![FieldError::new("code", "does not match the authenticator's current code")]);
    let step = mfa::matching_step(&secret, &code, now()).ok_or_else(wrong)?;
    let codes = recovery::generate();
    let digests: Vec<[u8; 32]> = codes.iter().map(|c| c.digest()).collect();
    // Only the secret the code was checked against (not one a concurrent enrolment put).
    if !state.mfa.totp.confirm(user.id, &sealed, step, &digests).await? {
        return Err(wrong());
    }
    tracing::info!(user_id = %user.id, "TOTP enrolled");
    Ok(RecoveryCodes { recovery_codes: codes.iter().map(|c| c.as_str().to_string()).collect() })
}

/// The account's TOTP secret, opened, with its sealed bytes; `None` before any enrolment.
async fn secret_of(state: &AppState, user: &User) -> Result<Option<(TotpSecret, Vec<u8>)>, Error> {
    let Some(stored) = state.mfa.totp.state(user.id).await? else { return Ok(None) };
    let seal = state.mfa.seal.as_ref().ok_or(Error::MfaUnavailable)?;
    let bytes = seal.open(&stored.sealed, user.id.as_bytes()).map_err(|e| Error::Internal(e.into()))?;
    let secret = TotpSecret::from_bytes(bytes).map_err(|e| Error::Internal(e.into()))?;
    Ok(Some((secret, stored.sealed)))
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// What a login of `user` must show besides its password: nothing when it has no
/// second factor; else a TOTP code of a step not used before, or an unused recovery
/// code. A wrong code is [`Error::InvalidCredentials`] (counted as a failed login).
pub(super) async fn second_factor(
    state: &AppState,
    user: &User,
    totp: Option<String>,
    recovery_code: Option<String>,
) -> Result<(), Error> {
    if !user.totp_enrolled {
        return Ok(());
    }
    let accepted = match (totp, recovery_code) {
        (Some(code), _) => {
            let (secret, _) = secret_of(state, user).await?.ok_or(Error::MfaUnavailable)?;
            match mfa::matching_step(&secret, &code, now()) {
                Some(step) => state.mfa.totp.use_step(user.id, step).await?,
                None => false,
            }
        }
        (None, Some(code)) => match recovery::normalize(&code) {
            Some(normalized) => state.mfa.totp.use_recovery(user.id, &recovery::digest(&normalized)).await?,
            None => false,
        },
        (None, None) => return Err(Error::MfaRequired),
    };
    if accepted { Ok(()) } else { Err(Error::InvalidCredentials) }
}
