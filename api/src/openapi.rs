//! The OpenAPI 3.1 document, generated from the handlers and types, and the offline Swagger UI.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

/// The API description served at `/api/v1/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "Stratus API", description = "Control plane and billing of a cloud service provider. Route contract: API.md."),
    paths(
        routes::auth::register, routes::auth::login, routes::auth::refresh, routes::auth::logout,
        routes::me::me,
        routes::audit::global_log, routes::audit::stream_events,
        routes::health::live, routes::health::ready,
    ),
    components(schemas(crate::error::Problem, crate::error::FieldError)),
    modifiers(&BearerAuth),
    tags((name = "identity"), (name = "audit"), (name = "operations"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}
