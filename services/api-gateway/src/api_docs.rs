//! The OpenAPI documents the gateway publishes: which APIs have one at
//! `/api-docs/<api>`, fetched from the service that serves each (the audit API's is
//! the gateway's own), and the Swagger UI that lists them all.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, Request, State},
    response::{IntoResponse, Response},
};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::{
    audit,
    error::GatewayError,
    gateway::{Gateway, RateKey},
};

/// The APIs with an OpenAPI document at `/api-docs/<api>` (all listed in the Swagger UI
/// at `/swagger-ui`).
pub const DOCUMENTED_APIS: [&str; 5] = ["auth", "patients", "billing", "analytics", "audit"];

/// The Swagger UI at `/swagger-ui`, listing every documented API.
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/swagger-ui").config(Config::new(DOCUMENTED_APIS.map(|api| format!("/api-docs/{api}"))))
}

/// Public: each API's OpenAPI document, from the service that serves it (the audit
/// API is the gateway's own).
pub async fn api_docs(
    State(gw): State<Arc<Gateway>>,
    Path(api): Path<String>,
    request: Request,
) -> Result<Response, GatewayError> {
    let client = gw.client(&request);
    gw.admit(RateKey::Address(client))?;
    let upstream = match api.as_str() {
        "auth" => &gw.auth,
        "patients" => &gw.patients,
        "billing" => &gw.billing,
        "analytics" => &gw.analytics,
        "audit" => return Ok(Json(<audit::ApiDoc as utoipa::OpenApi>::openapi()).into_response()),
        _ => return Err(GatewayError::NoSuchApi { documented: &DOCUMENTED_APIS }),
    };
    gw.forward(upstream, pulsetrack_common::openapi::DOCS_PATH, client, request).await
}
