//! Extractors: JSON bodies with a size limit and field-level errors, the caller's identity, and
//! the request context that becomes event metadata.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use stratus_commands::CommandMetadata;
use stratus_domain::{AccountId, Role, SessionId};
use uuid::Uuid;

use crate::auth::{TokenError, Tokens};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use stratus_projections::accounts;

/// Largest JSON body accepted. Every request body of the API is a small document; anything larger
/// is a mistake or an attack.
pub const JSON_BODY_LIMIT_BYTES: usize = 64 * 1024;
/// Longest `User-Agent` kept in event metadata.
pub const USER_AGENT_MAX_CHARS: usize = 256;

/// A JSON request body, parsed with the path of any field that has the wrong shape.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type_ok = req
            .mime_type()
            .ok()
            .flatten()
            .map(|m| m.subtype() == mime_json() || m.suffix().map(|s| s.as_str()) == Some("json"))
            .unwrap_or(false);
        let declared_len = declared_length(req.headers());
        let payload = payload.take();
        Box::pin(async move {
            if !content_type_ok {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "the body must be JSON with Content-Type: application/json",
                ));
            }
            let body = read_body(payload, declared_len).await?;
            parse_json(&body).map(Json)
        })
    }
}

/// The `Content-Length` a request declares, when it is a number.
pub(crate) fn declared_length(headers: &header::HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// Reads a whole request body of at most [`JSON_BODY_LIMIT_BYTES`]: 413 when it declares or
/// streams more, 400 when the connection fails mid-body.
pub(crate) async fn read_body(
    mut payload: Payload,
    declared_len: Option<usize>,
) -> Result<web::Bytes, ApiError> {
    if declared_len.is_some_and(|n| n > JSON_BODY_LIMIT_BYTES) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "unreadable_body", e.to_string())
        })?;
        if body.len() + chunk.len() > JSON_BODY_LIMIT_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn mime_json() -> &'static str {
    "json"
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body is larger than {JSON_BODY_LIMIT_BYTES} bytes"),
    )
}

/// Parses a JSON document: syntax errors are 400 `malformed_json`; a valid document of the wrong
/// shape is 422 with the offending field.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let malformed = |e: serde_json::Error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        )
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => {
            de.end().map_err(malformed)?;
            Ok(value)
        }
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let field = if path == "." { "body".to_owned() } else { path };
                    Err(ApiError::validation(vec![FieldError::new(
                        field,
                        "invalid_type",
                        inner.to_string(),
                    )]))
                }
                _ => Err(malformed(inner)),
            }
        }
    }
}

/// Where a request came from and which request it is; becomes event metadata.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The request id the middleware assigned, stored in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestContext {
    pub fn of(req: &HttpRequest) -> Self {
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_else(|| Uuid::now_v7().to_string());
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(USER_AGENT_MAX_CHARS).collect());
        Self {
            request_id,
            client_ip: req.peer_addr().map(|a| a.ip().to_string()),
            user_agent,
        }
    }

    /// Metadata for a command issued by `actor` (an account id, or `anonymous` before login).
    pub fn metadata(&self, actor: String, role: Option<Role>) -> CommandMetadata {
        CommandMetadata {
            actor,
            role: role.map(|r| r.as_str().to_owned()),
            request_id: Some(self.request_id.clone()),
            command_id: Uuid::now_v7(),
            correlation_id: self.request_id.clone(),
            causation_id: self.request_id.clone(),
            client_ip: self.client_ip.clone(),
            user_agent: self.user_agent.clone(),
        }
    }
}

impl FromRequest for RequestContext {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Self::of(req)))
    }
}

/// An authenticated caller: a valid access token was presented.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account_id: AccountId,
    pub session_id: SessionId,
    pub roles: Vec<Role>,
    pub context: RequestContext,
}

impl Caller {
    /// Refuses with 403 unless the caller holds one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), ApiError> {
        if self.roles.iter().any(|r| roles.contains(r)) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// The role recorded in event metadata: the most privileged one the caller holds.
    pub fn primary_role(&self) -> Option<Role> {
        self.roles.iter().max().copied()
    }

    /// Metadata for a command this caller issues.
    pub fn metadata(&self) -> CommandMetadata {
        self.context
            .metadata(self.account_id.to_string(), self.primary_role())
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let claimed = verify_token(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let context = RequestContext::of(req);
        Box::pin(async move {
            let claimed = claimed?;
            let state =
                state.ok_or_else(|| ApiError::internal(&"application state is not configured"))?;
            let roles = current_roles(&state, &claimed).await?;
            Ok(Caller {
                account_id: claimed.account_id,
                session_id: claimed.session_id,
                roles,
                context,
            })
        })
    }
}

/// A caller known only by a valid access token, without the per-request session check: for
/// logout, which must stay harmless on a session that has already ended.
#[derive(Debug, Clone)]
pub struct TokenHolder {
    pub account_id: AccountId,
    pub session_id: SessionId,
    pub context: RequestContext,
}

impl FromRequest for TokenHolder {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(verify_token(req).map(|claimed| TokenHolder {
            account_id: claimed.account_id,
            session_id: claimed.session_id,
            context: RequestContext::of(req),
        }))
    }
}

/// The account a valid access token names, or `None` without one. Signature and expiry are
/// checked, the session is not: enough to keep one caller's stored answers from another's
/// (idempotency keys), never to authorise anything.
pub(crate) fn token_account(req: &HttpRequest) -> Option<AccountId> {
    req.headers().get(header::AUTHORIZATION)?;
    verify_token(req).ok().map(|claimed| claimed.account_id)
}

/// What a valid access token says.
struct Claimed {
    account_id: AccountId,
    session_id: SessionId,
    roles: Vec<Role>,
}

fn verify_token(req: &HttpRequest) -> Result<Claimed, ApiError> {
    let tokens = req
        .app_data::<web::Data<Tokens>>()
        .ok_or_else(|| ApiError::internal(&"token verifier is not configured"))?;
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("missing_token", "send Authorization: Bearer <access token>")
    })?;
    let value = value.to_str().map_err(|_| {
        ApiError::unauthorized("invalid_token", "the Authorization header is not text")
    })?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| {
            ApiError::unauthorized("invalid_token", "the Authorization scheme must be Bearer")
        })?;
    let claims = tokens.verify(token.trim()).map_err(|e| match e {
        TokenError::Expired => ApiError::unauthorized("token_expired", e.to_string()),
        TokenError::Invalid => ApiError::unauthorized("invalid_token", e.to_string()),
    })?;
    Ok(Claimed {
        account_id: AccountId::from_uuid(claims.sub),
        session_id: SessionId::from_uuid(claims.sid),
        roles: claims.roles,
    })
}

/// Checks the token's session and account against the read model on every request, so logout,
/// revocation, suspension and role changes take effect at once rather than when the access token
/// expires. Costs one primary-key join, or nothing while the answer is cached
/// ([`crate::principals`]: until the `accounts` projection applies anything, one second at most).
///
/// A session the read model does not know yet can only be one that was just started (a forged
/// session id would need the signing key), so the token's own claims stand in until it appears.
async fn current_roles(state: &AppState, claimed: &Claimed) -> Result<Vec<Role>, ApiError> {
    let session = claimed.session_id.as_uuid();
    let accounts_at = state.feed.local_progress(accounts::NAME);
    let principal = match state.principals.get(session, accounts_at) {
        Some(principal) => Some(principal),
        None => {
            let read = accounts::principal(&state.pool, session).await?;
            if let Some(principal) = &read {
                state
                    .principals
                    .put(session, principal.clone(), accounts_at);
            }
            read
        }
    };
    let Some(principal) = principal else {
        return Ok(claimed.roles.clone());
    };
    if principal.account_status != accounts::STATUS_ACTIVE {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "account_suspended",
            "this account is suspended",
        ));
    }
    if principal.session_status != accounts::SESSION_ACTIVE {
        return Err(ApiError::unauthorized(
            "session_ended",
            "the session has ended or was revoked; log in again",
        ));
    }
    if principal.session_expires_at <= chrono::Utc::now() {
        return Err(ApiError::unauthorized(
            "session_expired",
            "the session has expired; log in again",
        ));
    }
    Ok(principal
        .roles
        .iter()
        .filter_map(|r| r.parse().ok())
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Body {
        #[allow(dead_code)]
        email: Option<String>,
        #[allow(dead_code)]
        count: Option<u32>,
    }

    #[test]
    fn broken_json_is_malformed_and_a_wrong_type_names_its_field() {
        let err = parse_json::<Body>(b"{\"email\": ").err().unwrap();
        assert_eq!((err.status.as_u16(), err.code), (400, "malformed_json"));
        let err = parse_json::<Body>(b"{\"count\": \"seven\"}").err().unwrap();
        assert_eq!((err.status.as_u16(), err.code), (422, "validation_failed"));
        assert_eq!(err.errors[0].field, "count");
        let err = parse_json::<Body>(b"\"text\"").err().unwrap();
        assert_eq!(err.errors[0].field, "body");
        let err = parse_json::<Body>(b"{} trailing").err().unwrap();
        assert_eq!(err.code, "malformed_json");
    }
}
