//! What every service's OpenAPI document shares: the error body, the bearer token the
//! gateway checks, the `/v3/api-docs` route, and field schemas that say exactly what
//! the validators in [`crate::validate`] accept (so that a schema-valid request is
//! accepted and an invalid one refused, which schemathesis checks).

use axum::{Json, Router, routing::get};
use utoipa::{
    Modify,
    openapi::{
        ObjectBuilder, OpenApi, RefOr, Schema, Type,
        security::{Http, HttpAuthScheme, SecurityScheme},
    },
};

use crate::validate::forbidden_class;

/// The security scheme's name in every document.
pub const BEARER: &str = "bearer";
/// Where a service serves its own document.
pub const DOCS_PATH: &str = "/v3/api-docs";

/// Adds the bearer-token scheme (an EdDSA JWT from `POST /auth/login`).
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        components.add_security_scheme(BEARER, SecurityScheme::Http(http));
    }
}

/// `GET /v3/api-docs`: the service's document as JSON.
pub fn docs_route(doc: OpenApi) -> Router {
    Router::new().route(DOCS_PATH, get(move || std::future::ready(Json(doc.clone()))))
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// Text as [`crate::validate::text`] takes it: at most `max` characters, at least one
/// of them not white space, no control or format character.
fn text(max: usize) -> RefOr<Schema> {
    let f = forbidden_class();
    string().min_length(Some(1)).max_length(Some(max)).pattern(Some(format!("^[^{f}]*[^\\s{f}][^{f}]*$"))).into()
}

/// A search or filter term: at most 200 characters, no control or format character.
pub fn search_term() -> RefOr<Schema> {
    let f = forbidden_class();
    string().max_length(Some(200)).pattern(Some(format!("^[^{f}]*$"))).into()
}

/// An account id as `GET /audit?actor=` takes it: 1 to 200 characters, at least one
/// not white space, no control or format character.
pub fn actor() -> RefOr<Schema> {
    text(200)
}

pub fn text_100() -> RefOr<Schema> {
    text(100)
}

pub fn text_200() -> RefOr<Schema> {
    text(200)
}

pub fn text_500() -> RefOr<Schema> {
    text(500)
}

/// An email address as [`crate::validate::email`] takes it (ASCII, one `@`, a dotted
/// domain; compared without case).
pub fn email() -> RefOr<Schema> {
    string()
        .max_length(Some(254))
        .pattern(Some(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"))
        .examples(["ada@example.com"])
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_pattern_names_the_refused_characters() {
        let RefOr::T(Schema::Object(schema)) = text(200) else { panic!("an object schema") };
        let pattern = schema.pattern.expect("a pattern");
        assert!(pattern.contains("\\u202a-\\u202e") && pattern.contains("\\s"), "{pattern}");
        assert_eq!(schema.max_length, Some(200));
    }
}
