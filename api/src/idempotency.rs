//! `Idempotency-Key` (DESIGN.md section 7): a retried request that creates something or moves
//! money gets the first attempt's answer instead of running twice.
//!
//! Wrap a resource with [`Idempotent`] (`#[post("/wallet/top-ups", wrap = "Idempotent::new()")]`,
//! or `web::resource(…).wrap(Idempotent::new())`). Then, for every request to it that is not
//! `GET`, `HEAD`, `OPTIONS` or `TRACE`:
//!
//! - Without the header the request runs as if the wrapper were not there: the key is optional.
//! - The key is 1 to [`KEY_MAX_CHARS`] printable ASCII characters (space included), sent once;
//!   anything else is 400 `invalid_idempotency_key` and nothing runs. The value is opaque: a
//!   quoted key (`"abc"`, as the IETF draft writes it) and a bare one (`abc`) are different keys.
//! - Keys are scoped by the caller, the method and the path: the subject of a valid bearer token
//!   (signature and expiry checked, without a database round-trip), or the anonymous scope when
//!   there is none. One caller's key never answers another caller's request.
//! - The request body is read here (at most [`crate::extract::JSON_BODY_LIMIT_BYTES`], as the
//!   JSON extractor allows) and [`fingerprint`]ed with the method and the path and query. The
//!   first request claims the key atomically (an insert that only one of simultaneous requests
//!   wins).
//! - The same key with another fingerprint is 422 `idempotency_key_reused`; while the first request
//!   runs, the same key again is 409 `idempotency_key_in_progress` with `Retry-After: 1`.
//! - When the handler answers below 500, its status, body and [`STORED_HEADERS`] are kept; later
//!   requests with the same key and fingerprint get exactly that answer again, plus
//!   `Idempotent-Replayed: true`. Refusals (4xx) are kept too: the same request gets the same
//!   refusal. A 5xx deletes the claim, so the client may retry.
//! - Once the body is read, the claim, the handler and the recording run on a task of their own,
//!   so a client that hangs up neither stops the handler nor leaves a claim without its outcome:
//!   the retry replays the answer.
//! - A claim whose request never finished (its process died) may be taken over by the same request
//!   after the lock timeout (`STRATUS_IDEMPOTENCY_LOCK_TIMEOUT_SECONDS`, 60 s). Keys expire after
//!   `STRATUS_IDEMPOTENCY_TTL_HOURS` (24 h): expired rows are ignored, taken over by the next use
//!   of the key and purged, a bounded batch at a time, whenever a new key is claimed.
//! - If the table cannot be reached the answer is 503 `idempotency_unavailable` and nothing runs;
//!   if the answer cannot be recorded afterwards, the client still gets it and the failure is
//!   logged (the claim then stays until the lock timeout).
//!
//! The rows live in `idempotency_keys` ([`stratus_commands::idempotency_keys`]);
//! `docs/adr/0006-idempotency-keys.md` records why it works this way.

use std::future::{ready, Ready};
use std::rc::Rc;

use actix_web::body::{to_bytes, EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpMessage, HttpResponse};
use futures::future::LocalBoxFuture;
use sha2::{Digest, Sha256};
use stratus_commands::idempotency_keys::{self, Claim, ClaimId, KeyId, Lifetimes, StoredResponse};
use tracing::Instrument;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::extract::{declared_length, read_body, token_account};
use crate::state::AppState;

/// The request header that carries the key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// The response header that marks a replayed answer.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest key accepted: Stripe's limit, room for a UUID or a client's own composite key.
pub const KEY_MAX_CHARS: usize = 255;
/// `Retry-After` of 409 `idempotency_key_in_progress`: most requests finish within a second.
pub const IN_PROGRESS_RETRY_AFTER_SECONDS: u64 = 1;
/// The scope of requests without a valid bearer token.
pub const ANONYMOUS_SCOPE: &str = "anonymous";
/// The response headers kept and replayed with the status and body. Others (the request id, the
/// consistency header, `Retry-After`) describe the moment of the first answer, not the answer.
pub const STORED_HEADERS: [HeaderName; 3] = [
    header::CONTENT_TYPE,
    header::LOCATION,
    header::WWW_AUTHENTICATE,
];

/// Why an `Idempotency-Key` header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKey {
    #[error("the Idempotency-Key header is empty")]
    Empty,
    #[error("the Idempotency-Key header is longer than {KEY_MAX_CHARS} characters")]
    TooLong,
    #[error("the Idempotency-Key header must be printable ASCII")]
    NotPrintableAscii,
    #[error("the Idempotency-Key header must be sent once")]
    Repeated,
}

/// Why a request with a key did not run; mapped to HTTP in [`crate::error`].
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error(transparent)]
    InvalidKey(#[from] InvalidKey),
    #[error("this Idempotency-Key was already used for a different request")]
    Reused,
    #[error("a request with this Idempotency-Key is still running; retry shortly")]
    InProgress,
    #[error("idempotency keys cannot be read or written: {0}")]
    Unavailable(#[from] sqlx::Error),
}

/// The key of a request: `None` without the header.
pub fn request_key(headers: &HeaderMap) -> Option<Result<String, InvalidKey>> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY_HEADER);
    let first = values.next()?;
    if values.next().is_some() {
        return Some(Err(InvalidKey::Repeated));
    }
    Some(parse_key(first.as_bytes()))
}

/// A key as sent: 1 to [`KEY_MAX_CHARS`] printable ASCII characters.
pub fn parse_key(value: &[u8]) -> Result<String, InvalidKey> {
    if value.is_empty() {
        return Err(InvalidKey::Empty);
    }
    if !value.iter().all(|b| (b' '..=b'~').contains(b)) {
        return Err(InvalidKey::NotPrintableAscii);
    }
    if value.len() > KEY_MAX_CHARS {
        return Err(InvalidKey::TooLong);
    }
    String::from_utf8(value.to_vec()).map_err(|_| InvalidKey::NotPrintableAscii)
}

/// SHA-256 of the method, the path with its query and the body. The separators are NUL bytes,
/// which neither a method nor a request target can contain, so no two requests share an input.
pub fn fingerprint(method: &str, target: &str, body: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(method.as_bytes());
    hash.update([0]);
    hash.update(target.as_bytes());
    hash.update([0]);
    hash.update(body);
    hash.finalize().into()
}

/// The scope of a caller: its account when it sent a valid access token.
fn caller_scope(req: &actix_web::HttpRequest) -> String {
    match token_account(req) {
        Some(account) => format!("account:{account}"),
        None => ANONYMOUS_SCOPE.to_owned(),
    }
}

/// The parts of an answer worth keeping.
pub fn stored_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> StoredResponse {
    let headers = STORED_HEADERS
        .iter()
        .flat_map(|name| headers.get_all(name).map(move |value| (name, value)))
        .filter_map(|(name, value)| {
            value
                .to_str()
                .ok()
                .map(|v| (name.as_str().to_owned(), v.to_owned()))
        })
        .collect();
    StoredResponse {
        status: status.as_u16(),
        headers,
        body: body.to_vec(),
    }
}

/// A kept answer, sent again with `Idempotent-Replayed: true`.
pub fn replay(stored: &StoredResponse) -> Result<HttpResponse, ApiError> {
    let status = StatusCode::from_u16(stored.status).map_err(|e| ApiError::internal(&e))?;
    let mut response = HttpResponse::build(status);
    for (name, value) in &stored.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.append_header((name, value));
        }
    }
    response.insert_header((
        HeaderName::from_static(REPLAYED_HEADER),
        HeaderValue::from_static("true"),
    ));
    Ok(response.body(stored.body.clone()))
}

/// The optional `Idempotency-Key` header, for `params(...)` of a wrapped route's `utoipa::path`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKeyHeader {
    /// Up to 255 printable ASCII characters. A retry with the same key and body gets the first
    /// answer again (`Idempotent-Replayed: true`) for 24 hours by default; the same key with
    /// another body is 422 `idempotency_key_reused`; while the first runs, 409
    /// `idempotency_key_in_progress`.
    #[param(rename = "Idempotency-Key")]
    pub idempotency_key: Option<String>,
}

/// The middleware: `.wrap(Idempotent::new())` on a resource that creates something or moves money.
/// It reads the pool and the lifetimes from the app's [`AppState`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Idempotent;

impl Idempotent {
    pub fn new() -> Self {
        Self
    }
}

impl<S, B> Transform<S, ServiceRequest> for Idempotent
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = IdempotentService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(IdempotentService {
            service: Rc::new(service),
        }))
    }
}

/// The service [`Idempotent`] wraps around a resource.
pub struct IdempotentService<S> {
    service: Rc<S>,
}

impl<S, B> Service<ServiceRequest> for IdempotentService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        Box::pin(handle(Rc::clone(&self.service), req))
    }
}

/// A request's key with its scope, owned, so that the task running the request can keep it.
#[derive(Clone)]
struct ScopedKey {
    scope: String,
    method: String,
    path: String,
    key: String,
}

impl ScopedKey {
    fn id(&self) -> KeyId<'_> {
        KeyId {
            scope: &self.scope,
            method: &self.method,
            path: &self.path,
            key: &self.key,
        }
    }
}

/// A key this request claimed.
#[derive(Clone)]
struct HeldKey {
    key: ScopedKey,
    claim: ClaimId,
}

fn refuse<B>(req: ServiceRequest, err: impl Into<ApiError>) -> ServiceResponse<EitherBody<B>> {
    req.error_response(err.into()).map_into_right_body()
}

fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

async fn handle<S, B>(
    service: Rc<S>,
    mut req: ServiceRequest,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    let presented = if is_safe(req.method()) {
        None
    } else {
        request_key(req.headers())
    };
    let key = match presented {
        None => {
            return service
                .call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        Some(Err(invalid)) => return Ok(refuse(req, IdempotencyError::from(invalid))),
        Some(Ok(key)) => key,
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(refuse(
            req,
            ApiError::internal(&"application state is not configured"),
        ));
    };
    let declared = declared_length(req.headers());
    let body = match read_body(req.take_payload(), declared).await {
        Ok(body) => body,
        Err(err) => return Ok(refuse(req, err)),
    };
    let key = ScopedKey {
        scope: caller_scope(req.request()),
        method: req.method().as_str().to_owned(),
        path: req.path().to_owned(),
        key,
    };
    let target = req
        .uri()
        .path_and_query()
        .map_or(key.path.as_str(), |p| p.as_str());
    let fingerprint = fingerprint(&key.method, target, &body);
    req.set_payload(Payload::from(body));
    let held = HeldKey {
        key,
        claim: ClaimId::mint(),
    };
    run_detached(service, req, state, held, fingerprint).await
}

/// Claims the key, runs the request and records its answer on a task of its own (on this worker's
/// thread, since actix services are not `Send`): a client that hangs up drops only the wait, never
/// a claim without its outcome.
async fn run_detached<S, B>(
    service: Rc<S>,
    req: ServiceRequest,
    state: web::Data<AppState>,
    held: HeldKey,
    fingerprint: [u8; 32],
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    let (worker_state, worker_held) = (state.clone(), held.clone());
    let task = actix_web::rt::spawn(
        async move { claim_and_run(service, req, &worker_state, &worker_held, &fingerprint).await }
            .instrument(tracing::Span::current()),
    );
    match task.await {
        Ok(result) => result,
        Err(lost) => {
            // The task panicked: it answered nothing, so whatever it claimed goes back.
            release(&state, &held).await;
            Err(ApiError::internal(&lost).into())
        }
    }
}

async fn claim_and_run<S, B>(
    service: Rc<S>,
    req: ServiceRequest,
    state: &AppState,
    held: &HeldKey,
    fingerprint: &[u8],
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    let lifetimes = Lifetimes {
        ttl_seconds: state.settings.idempotency_ttl_seconds(),
        lock_timeout_seconds: i64::from(state.settings.idempotency_lock_timeout_seconds),
    };
    let claimed = idempotency_keys::claim(
        &state.pool,
        held.key.id(),
        fingerprint,
        held.claim,
        lifetimes,
    )
    .await;
    match claimed {
        Err(e) => Ok(refuse(req, IdempotencyError::from(e))),
        Ok(Claim::Reused) => Ok(refuse(req, IdempotencyError::Reused)),
        Ok(Claim::InProgress) => Ok(refuse(req, IdempotencyError::InProgress)),
        Ok(Claim::Replay(stored)) => {
            tracing::debug!(status = stored.status, "idempotent replay");
            Ok(match replay(&stored) {
                Ok(response) => req.into_response(response).map_into_right_body(),
                Err(err) => refuse(req, err),
            })
        }
        Ok(Claim::Granted) => {
            let outcome = service.call(req).await;
            record(state, held, outcome).await
        }
    }
}

/// Keeps the answer (below 500) or gives the key back (5xx), and passes the answer on unchanged.
async fn record<B>(
    state: &AppState,
    held: &HeldKey,
    outcome: Result<ServiceResponse<B>, actix_web::Error>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error>
where
    B: MessageBody + 'static,
{
    match outcome {
        Err(err) => {
            // An error that escaped as `Err` is rendered by actix later; keep what it will render.
            let rendered = err.error_response();
            if rendered.status().is_server_error() {
                release(state, held).await;
            } else {
                let _ = keep_answer(state, held, rendered).await;
            }
            Err(err)
        }
        Ok(response) if response.status().is_server_error() => {
            release(state, held).await;
            Ok(response.map_into_left_body())
        }
        Ok(response) => {
            let (request, response) = response.into_parts();
            let response = keep_answer(state, held, response).await?;
            Ok(ServiceResponse::new(request, response.map_into_boxed_body()).map_into_right_body())
        }
    }
}

/// Reads a whole answer, keeps it and hands it back rebuilt. A body that fails while being read
/// (it would have broken the connection anyway) keeps nothing, frees the key and becomes a 500.
async fn keep_answer<B: MessageBody>(
    state: &AppState,
    held: &HeldKey,
    response: HttpResponse<B>,
) -> Result<HttpResponse<web::Bytes>, ApiError> {
    let (head, body) = response.into_parts();
    match to_bytes(body).await {
        Ok(body) => {
            let stored = stored_response(head.status(), head.headers(), &body);
            keep(state, held, &stored).await;
            Ok(head.set_body(body))
        }
        Err(e) => {
            let e: Box<dyn std::error::Error> = e.into();
            release(state, held).await;
            Err(ApiError::internal(&e))
        }
    }
}

async fn keep(state: &AppState, held: &HeldKey, stored: &StoredResponse) {
    match idempotency_keys::complete(&state.pool, held.key.id(), held.claim, stored).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            "an idempotent request outlived its lock and its key was taken over; its answer was not kept"
        ),
        Err(e) => tracing::error!(
            error = %e,
            "could not keep an idempotent answer; the key stays claimed until the lock timeout"
        ),
    }
}

async fn release(state: &AppState, held: &HeldKey) {
    if let Err(e) = idempotency_keys::release(&state.pool, held.key.id(), held.claim).await {
        tracing::error!(
            error = %e,
            "could not release an idempotency key after a server error; it frees itself after the lock timeout"
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_key_is_one_to_255_printable_ascii_characters() {
        assert_eq!(parse_key(b"a").unwrap(), "a");
        assert_eq!(
            parse_key(b"8e03978e-40d5-43e8-bc93-6894a57f9324").unwrap(),
            "8e03978e-40d5-43e8-bc93-6894a57f9324"
        );
        assert_eq!(parse_key(b"\"quoted key\"").unwrap(), "\"quoted key\"");
        let longest = "k".repeat(KEY_MAX_CHARS);
        assert_eq!(parse_key(longest.as_bytes()).unwrap(), longest);
    }

    #[test]
    fn an_empty_long_or_non_ascii_key_is_refused() {
        assert_eq!(parse_key(b""), Err(InvalidKey::Empty));
        let too_long = "k".repeat(KEY_MAX_CHARS + 1);
        assert_eq!(parse_key(too_long.as_bytes()), Err(InvalidKey::TooLong));
        assert_eq!(
            parse_key("clé".as_bytes()),
            Err(InvalidKey::NotPrintableAscii)
        );
        assert_eq!(parse_key(b"tab\there"), Err(InvalidKey::NotPrintableAscii));
        assert_eq!(parse_key(b"del\x7f"), Err(InvalidKey::NotPrintableAscii));
    }

    #[test]
    fn the_header_is_optional_but_must_be_sent_once() {
        let mut headers = HeaderMap::new();
        assert_eq!(request_key(&headers), None);
        headers.append(
            HeaderName::from_static(IDEMPOTENCY_KEY_HEADER),
            HeaderValue::from_static("one"),
        );
        assert_eq!(request_key(&headers), Some(Ok("one".to_owned())));
        headers.append(
            HeaderName::from_static(IDEMPOTENCY_KEY_HEADER),
            HeaderValue::from_static("two"),
        );
        assert_eq!(request_key(&headers), Some(Err(InvalidKey::Repeated)));
    }

    #[test]
    fn the_fingerprint_changes_with_the_method_the_target_or_the_body() {
        let (method, target, body) = ("POST", "/api/v1/auth/register", &b"{\"a\":1}"[..]);
        let base = fingerprint(method, target, body);
        assert_eq!(base, fingerprint(method, target, body));
        let changed: [(&str, &str, &[u8]); 4] = [
            ("PUT", target, body),
            (method, "/api/v1/auth/register?x=1", body),
            (method, target, b"{\"a\":2}"),
            (method, target, b"{\"a\": 1}"),
        ];
        for (method, target, body) in changed {
            assert_ne!(base, fingerprint(method, target, body), "{method} {target}");
        }
        // Moving bytes across the boundary between the target and the body changes it too.
        assert_ne!(
            fingerprint("POST", "/ab", b"c"),
            fingerprint("POST", "/a", b"bc")
        );
        assert_eq!(
            fingerprint("POST", "/", b""),
            <[u8; 32]>::from(Sha256::digest(b"POST\0/\0"))
        );
    }

    #[test]
    fn only_the_headers_of_the_answer_itself_are_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::LOCATION,
            HeaderValue::from_static("/api/v1/orders/1"),
        );
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("3"));
        headers.insert(
            HeaderName::from_static("x-request-id"),
            HeaderValue::from_static("first"),
        );

        let stored = stored_response(StatusCode::CREATED, &headers, b"{\"id\":1}");

        assert_eq!(stored.status, 201);
        assert_eq!(stored.body, b"{\"id\":1}");
        assert_eq!(
            stored.headers,
            vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("location".to_owned(), "/api/v1/orders/1".to_owned()),
            ]
        );
    }

    #[actix_web::test]
    async fn a_replay_has_the_status_headers_and_body_and_says_it_is_one() {
        let stored = StoredResponse {
            status: 201,
            headers: vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("location".to_owned(), "/api/v1/orders/1".to_owned()),
            ],
            body: b"{\"id\":1}".to_vec(),
        };

        let response = replay(&stored).unwrap();

        assert_eq!(response.status(), StatusCode::CREATED);
        let headers = response.headers();
        assert_eq!(
            headers.get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        assert_eq!(headers.get(header::LOCATION).unwrap(), "/api/v1/orders/1");
        assert_eq!(headers.get(REPLAYED_HEADER).unwrap(), "true");
        let body = to_bytes(response.into_body()).await.unwrap();
        assert_eq!(&body[..], b"{\"id\":1}");
    }
}
