//! The caller's identity, the token claims behind it, and the access policy: which
//! role may do what. The policy is written once, here; the gateway checks it before
//! forwarding and every service checks it again.
//!
//! Every service verifies the caller's bearer token itself ([`crate::token_check`]):
//! the [`Caller`] extractor takes the identity from the verified claims only. The
//! identity headers below are what older gateways forwarded; the gateway strips them
//! from every request, and no service reads them.

use std::{fmt, net::IpAddr, str::FromStr};

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{ApiError, request_id::REQUEST_ID_HEADER};

pub const USER_ID_HEADER: &str = "x-user-id";
pub const USER_EMAIL_HEADER: &str = "x-user-email";
pub const USER_ROLE_HEADER: &str = "x-user-role";
/// The session the caller's token belongs to (its `sid` claim).
pub const SESSION_ID_HEADER: &str = "x-session-id";
/// The client's address as the gateway determined it (the peer, or the address a
/// trusted proxy such as the ALB reported); the gateway sets it on every request.
pub const CLIENT_ADDR_HEADER: &str = "x-forwarded-for";

/// Every identity header; a client may send none of them.
pub const IDENTITY_HEADERS: [&str; 4] = [USER_ID_HEADER, USER_EMAIL_HEADER, USER_ROLE_HEADER, SESSION_ID_HEADER];

/// What an account may do, one role per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    /// Signed in, no access to patient data: an account waiting for an ADMIN's approval
    /// (what `approval` mode gives a signup).
    Pending,
    /// The ordinary account (the seed's USER): patient records, list, search, read,
    /// create, update. What `open` mode gives a signup.
    User,
    /// A clinician: today the same patient access as USER, kept apart so that an ADMIN
    /// can tell clinical staff from other accounts and grant them clinical-only access.
    Clinician,
    /// Billing accounts, read-only.
    Billing,
    /// The audit trail, read-only.
    Auditor,
    /// Users and roles, deletes, the audit trail, analytics; and what a clinician and
    /// billing may do (a small clinic's break-glass account; every access is audited).
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] = [Role::Pending, Role::User, Role::Clinician, Role::Billing, Role::Auditor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Pending => "PENDING",
            Role::User => "USER",
            Role::Clinician => "CLINICIAN",
            Role::Billing => "BILLING",
            Role::Auditor => "AUDITOR",
            Role::Admin => "ADMIN",
        }
    }

    /// The access policy: whether this role holds `permission`.
    pub fn may(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Pending => false,
            Role::User | Role::Clinician => matches!(permission, PatientsRead | PatientsWrite),
            Role::Billing => matches!(permission, BillingRead),
            Role::Auditor => matches!(permission, AuditRead),
            Role::Admin => true,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            format!("unknown role {s:?}; expected one of {}", names.join(", "))
        })
    }
}

/// One thing a caller may be allowed to do; [`Role::may`] is the whole policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// List, search and read patient records.
    PatientsRead,
    /// Create and update patient records.
    PatientsWrite,
    /// Delete a patient record.
    PatientsDelete,
    /// Read billing accounts.
    BillingRead,
    /// Read analytics (events and the summary).
    AnalyticsRead,
    /// Read and verify the audit trail.
    AuditRead,
    /// List accounts and change their roles.
    UsersManage,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::PatientsRead => "patients:read",
            Permission::PatientsWrite => "patients:write",
            Permission::PatientsDelete => "patients:delete",
            Permission::BillingRead => "billing:read",
            Permission::AnalyticsRead => "analytics:read",
            Permission::AuditRead => "audit:read",
            Permission::UsersManage => "users:manage",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// JWT claims issued by auth-service and checked by the gateway and every service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id (UUID).
    pub sub: String,
    pub email: String,
    pub role: Role,
    /// The session the token belongs to: once the session ends (logout, a disabled
    /// account, a role or password change ...), the token is refused. Required, so a
    /// token issued before sessions existed is refused too.
    pub sid: Uuid,
    /// What the token may be used for; a full token unless it says otherwise.
    #[serde(default, skip_serializing_if = "TokenScope::is_full")]
    pub scope: TokenScope,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
}

/// What a token may be used for. An account that must first take a step (change its
/// password, enrol a second factor) gets a token for that step only, refused elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TokenScope {
    /// Everything the role allows.
    #[default]
    Full,
    /// Only `PUT /auth/me/password` (and logout): the password predates a stronger rule.
    PasswordChange,
    /// Only `/auth/me/totp` (and logout): the role requires a second factor.
    MfaEnrolment,
}

impl TokenScope {
    pub fn is_full(&self) -> bool {
        *self == TokenScope::Full
    }

    /// Whether a token of this scope may call `path` (exactly; the gateway and
    /// auth-service both check it).
    pub fn allows(self, path: &str) -> bool {
        use auth_paths::*;
        match self {
            TokenScope::Full => true,
            TokenScope::PasswordChange => [LOGOUT, ME, PASSWORD].contains(&path),
            TokenScope::MfaEnrolment => [LOGOUT, ME, TOTP, TOTP_VERIFY].contains(&path),
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            TokenScope::Full => "full",
            TokenScope::PasswordChange => "password-change",
            TokenScope::MfaEnrolment => "mfa-enrolment",
        }
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// auth-service's routes that need a bearer token of their own account, whatever its
/// role: the gateway verifies the token on them, and a restricted token
/// ([`TokenScope`]) may call only some.
pub mod auth_paths {
    pub const LOGOUT: &str = "/auth/logout";
    pub const ME: &str = "/auth/me";
    pub const PASSWORD: &str = "/auth/me/password";
    pub const TOTP: &str = "/auth/me/totp";
    pub const TOTP_VERIFY: &str = "/auth/me/totp/verify";
}

/// Who is calling, from the claims of a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub email: String,
    pub role: Role,
}

impl From<Claims> for Identity {
    fn from(claims: Claims) -> Self {
        Self { user_id: claims.sub, email: claims.email, role: claims.role }
    }
}

/// Why a caller may not go on: no identity (401) or a role without the permission (403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("no authenticated caller")]
    Unauthenticated,
    #[error("the role {role} does not allow {permission}")]
    Forbidden { role: Role, permission: Permission },
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Unauthenticated => ApiError::unauthorized("no authenticated caller"),
            AccessError::Forbidden { .. } => ApiError::forbidden(format!("{e}")),
        }
    }
}

/// Why an `Authorization` header is not a usable bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    #[error("non-ASCII Authorization header")]
    NotAscii,
    #[error("Authorization is not a Bearer token")]
    NotBearer,
}

/// The bearer token of `headers` (`Authorization: Bearer <token>`, the scheme in any
/// case); `None` without an `Authorization` header.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, BearerError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else { return Ok(None) };
    bearer_of(value.to_str().map_err(|_| BearerError::NotAscii)?).map(Some)
}

/// The token of one `Authorization` value, `Bearer <token>` (the scheme in any case):
/// the HTTP header's and the service credential's in gRPC metadata
/// ([`crate::service_auth`]) alike.
pub fn bearer_of(value: &str) -> Result<&str, BearerError> {
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(BearerError::NotBearer),
    }
}

/// The client's address as the gateway forwarded it ([`CLIENT_ADDR_HEADER`], one address).
pub fn client_addr(headers: &HeaderMap) -> Option<IpAddr> {
    headers.get(CLIENT_ADDR_HEADER)?.to_str().ok()?.split(',').next()?.trim().parse().ok()
}

/// Who is calling a service: the identity from the caller's verified bearer token, the
/// request id and the client's address. An extractor ([`crate::token_check`]): a
/// request without a valid full-scope token of a live session is refused before the
/// handler runs (401, or 503 while the service cannot check tokens), whatever identity
/// headers it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub identity: Identity,
    pub request_id: Option<String>,
    pub client_addr: Option<IpAddr>,
}

impl Caller {
    /// The caller of a request with these headers, its token's claims already verified.
    pub fn new(claims: Claims, headers: &HeaderMap) -> Self {
        let request_id = headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
        Self { identity: claims.into(), request_id, client_addr: client_addr(headers) }
    }

    /// `Ok` when the caller's role holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), AccessError> {
        let role = self.identity.role;
        if role.may(permission) { Ok(()) } else { Err(AccessError::Forbidden { role, permission }) }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn role_round_trips_through_json_and_str() {
        for role in Role::ALL {
            let json = serde_json::to_string(&role).expect("serializes");
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("admin".parse::<Role>().is_err());
        assert!("ROOT".parse::<Role>().expect_err("unknown").contains("CLINICIAN"));
    }

    #[test]
    fn the_policy_gives_each_role_only_its_own_permissions() {
        use Permission::*;
        let all = [PatientsRead, PatientsWrite, PatientsDelete, BillingRead, AnalyticsRead, AuditRead, UsersManage];
        let granted = |role: Role| all.into_iter().filter(|p| role.may(*p)).collect::<Vec<_>>();
        assert_eq!(granted(Role::Pending), vec![]);
        assert_eq!(granted(Role::User), vec![PatientsRead, PatientsWrite]);
        assert_eq!(granted(Role::Clinician), vec![PatientsRead, PatientsWrite]);
        assert_eq!(granted(Role::Billing), vec![BillingRead]);
        assert_eq!(granted(Role::Auditor), vec![AuditRead]);
        assert_eq!(granted(Role::Admin), all.to_vec());
    }

    #[test]
    fn a_bearer_token_is_the_authorization_headers_second_word() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(axum::http::header::AUTHORIZATION, HeaderValue::from_static(value));
            headers
        };
        assert_eq!(bearer_token(&HeaderMap::new()), Ok(None));
        assert_eq!(bearer_token(&with("Bearer abc.def ")), Ok(Some("abc.def")));
        assert_eq!(bearer_token(&with("bearer abc")), Ok(Some("abc")));
        for refused in ["Bearer", "Bearer  ", "Basic dXNlcjpwYXNz", "abc"] {
            assert_eq!(bearer_token(&with(refused)), Err(BearerError::NotBearer), "{refused}");
        }
        let mut non_ascii = HeaderMap::new();
        non_ascii.insert(axum::http::header::AUTHORIZATION, HeaderValue::from_bytes(b"Bearer \xff").expect("bytes"));
        assert_eq!(bearer_token(&non_ascii), Err(BearerError::NotAscii));
    }

    #[test]
    fn a_restricted_token_reaches_only_its_step() {
        use auth_paths::*;
        for path in [LOGOUT, ME, PASSWORD, TOTP, "/auth/users", "/patients"] {
            assert!(TokenScope::Full.allows(path), "{path}");
        }
        assert!(TokenScope::PasswordChange.allows(PASSWORD));
        assert!(!TokenScope::PasswordChange.allows(TOTP));
        assert!(!TokenScope::PasswordChange.allows("/auth/me/password/"));
        assert!(TokenScope::MfaEnrolment.allows(TOTP_VERIFY));
        assert!(!TokenScope::MfaEnrolment.allows(PASSWORD));
        assert!(!TokenScope::MfaEnrolment.allows("/patients"));
        let json = serde_json::to_string(&TokenScope::MfaEnrolment).expect("json");
        assert_eq!(json, "\"mfa-enrolment\"");
    }

    #[test]
    fn a_caller_is_its_claims_with_request_id_and_client_address_and_is_checked_against_the_policy() {
        let claims = Claims {
            sub: "u1".into(),
            email: "a@b.c".into(),
            role: Role::Billing,
            sid: Uuid::nil(),
            scope: TokenScope::Full,
            iat: 1,
            exp: 2,
            iss: "i".into(),
            aud: "a".into(),
        };
        let mut headers = HeaderMap::new();
        headers.insert(USER_ROLE_HEADER, HeaderValue::from_static("ADMIN"));
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("req-1"));
        headers.insert(CLIENT_ADDR_HEADER, HeaderValue::from_static("203.0.113.9"));
        let caller = Caller::new(claims, &headers);
        assert_eq!(caller.identity, Identity { user_id: "u1".into(), email: "a@b.c".into(), role: Role::Billing });
        assert_eq!(caller.request_id.as_deref(), Some("req-1"));
        assert_eq!(caller.client_addr, "203.0.113.9".parse().ok());
        assert_eq!(caller.require(Permission::BillingRead), Ok(()));
        assert_eq!(
            caller.require(Permission::PatientsRead),
            Err(AccessError::Forbidden { role: Role::Billing, permission: Permission::PatientsRead })
        );
    }
}
