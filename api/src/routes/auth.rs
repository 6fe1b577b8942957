//! `/auth`: register, login (password or one-time code), refresh, logout.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use stratus_commands::secrets;
use stratus_commands::sessions::{self, LoginOutcome, NewSession, RefreshOutcome, Rotation};
use stratus_commands::{detached, CommandError};
use stratus_domain::account::{
    AccountCommand, AccountError, CodeChannel, LoginProof, SecondFactor,
};
use stratus_domain::{
    check_password_strength, AccountId, Email, PersonName, Phone, Role, SessionId,
};
use stratus_projections::accounts;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{new_refresh_token, refresh_token_hash, refresh_token_session, Tokens};
use crate::challenges;
use crate::error::{command_error, required_field, ApiError, FieldError};
use crate::extract::{Json, RequestContext, TokenHolder};
use crate::idempotency::{IdempotencyKeyHeader, Idempotent};
use crate::registration::{self, NewAccount};
use crate::state::{run_account, AppState, Consistency};

/// The projections whose tables these routes read after a command.
const READS: &[&str] = &[accounts::NAME];
/// Passwords longer than this are refused before hashing (argon2 cost grows with input).
const PASSWORD_MAX_BYTES: usize = 1024;

/// `POST /auth/register`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub name: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    pub phone: Option<String>,
}

/// The new account.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterResponse {
    pub account_id: Uuid,
}

struct ValidRegistration {
    name: PersonName,
    email: Email,
    phone: Option<Phone>,
    password: String,
}

fn validate_registration(body: RegisterRequest) -> Result<ValidRegistration, ApiError> {
    let mut errors = Vec::new();
    let name = required_field(&mut errors, "name", body.name.as_deref(), PersonName::parse);
    let email = required_field(&mut errors, "email", body.email.as_deref(), Email::parse);
    let phone = match body
        .phone
        .as_deref()
        .filter(|p| !p.trim().is_empty())
        .map(Phone::parse)
    {
        None => None,
        Some(Err(e)) => {
            errors.push(FieldError::from_value("phone", &e));
            None
        }
        Some(Ok(v)) => Some(v),
    };
    match body.password.as_deref() {
        None => errors.push(FieldError::required("password")),
        Some(p) if p.len() > PASSWORD_MAX_BYTES => errors.push(FieldError::new(
            "password",
            "password_too_long",
            format!("at most {PASSWORD_MAX_BYTES} bytes"),
        )),
        Some(p) => {
            if let Err(e) = check_password_strength(p, email.as_ref()) {
                errors.push(FieldError::from_value("password", &e));
            }
        }
    }
    match (name, email, body.password, errors.is_empty()) {
        (Some(name), Some(email), Some(password), true) => Ok(ValidRegistration {
            name,
            email,
            phone,
            password,
        }),
        _ => Err(ApiError::validation(errors)),
    }
}

/// Registers a customer account. Honours `Idempotency-Key` (see [`crate::idempotency`]).
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "identity", request_body = RegisterRequest,
    params(IdempotencyKeyHeader),
    responses((status = 201, body = RegisterResponse),
              (status = 400, description = "invalid_idempotency_key", body = crate::error::Problem),
              (status = 409, description = "email_taken, idempotency_key_in_progress (Retry-After)", body = crate::error::Problem),
              (status = 422, description = "validation_failed, idempotency_key_reused", body = crate::error::Problem),
              (status = 503, description = "idempotency_unavailable", body = crate::error::Problem)))]
#[post("/auth/register", wrap = "Idempotent::new()")]
pub async fn register(
    state: web::Data<AppState>,
    ctx: RequestContext,
    body: Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let valid = validate_registration(body.0)?;
    let account = NewAccount {
        name: valid.name,
        email: valid.email,
        phone: valid.phone,
        password: valid.password,
        roles: vec![Role::Customer],
    };
    let (account_id, consistency) = registration::register(&state, account, |id| {
        ctx.metadata(id.to_string(), Some(Role::Customer))
    })
    .await?;
    let response = HttpResponse::Created().json(RegisterResponse {
        account_id: account_id.as_uuid(),
    });
    Ok(consistency.mark(response))
}

/// `POST /auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub password: Option<String>,
    /// Required once two-factor authentication is on: a six-digit code from the authenticator
    /// app, or one of the recovery codes.
    pub totp_code: Option<String>,
}

/// An access token and the refresh token that renews it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// How a request names its account: an email, or a verified phone.
pub(crate) enum Lookup {
    Email(Email),
    Phone(Phone),
}

impl Lookup {
    /// Parses `email` or `phone` (exactly one), adding field errors to `errors`.
    pub(crate) fn parse(
        email: Option<&str>,
        phone: Option<&str>,
        errors: &mut Vec<FieldError>,
    ) -> Option<Self> {
        match (email, phone) {
            (Some(email), None) => match Email::parse(email) {
                Ok(email) => Some(Self::Email(email)),
                Err(e) => {
                    errors.push(FieldError::from_value("email", &e));
                    None
                }
            },
            (None, Some(phone)) => match Phone::parse(phone) {
                Ok(phone) => Some(Self::Phone(phone)),
                Err(e) => {
                    errors.push(FieldError::from_value("phone", &e));
                    None
                }
            },
            (None, None) => {
                errors.push(FieldError::new("email", "required", "send email or phone"));
                None
            }
            (Some(_), Some(_)) => {
                errors.push(FieldError::new(
                    "phone",
                    "ambiguous",
                    "send email or phone, not both",
                ));
                None
            }
        }
    }

    /// The credentials of the account it names, if any.
    pub(crate) async fn find(
        &self,
        state: &AppState,
    ) -> Result<Option<accounts::Credentials>, ApiError> {
        Ok(match self {
            Self::Email(email) => {
                accounts::credentials_by_email(&state.pool, email.as_str()).await?
            }
            Self::Phone(phone) => {
                accounts::credentials_by_phone(&state.pool, phone.as_str()).await?
            }
        })
    }
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "the email or password is wrong")
}

fn suspended() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "account_suspended",
        "this account is suspended",
    )
}

/// 423 while the read model says the account is locked: answered before any password work.
fn refuse_if_locked(credentials: &accounts::Credentials) -> Result<(), ApiError> {
    match credentials.locked_until {
        Some(until) if until > Utc::now() => Err(crate::error::account_refusal(
            &AccountError::AccountLocked { until },
        )),
        _ => Ok(()),
    }
}

/// A second factor as typed: six digits are a TOTP code, anything shaped like a recovery code
/// is hashed and matched against the stored hashes.
pub(crate) fn second_factor(text: Option<String>) -> Option<SecondFactor> {
    let text = text?.trim().to_owned();
    if text.is_empty() {
        None
    } else if secrets::is_recovery_code(&text) {
        Some(SecondFactor::RecoveryCodeHash(secrets::recovery_code_hash(
            &text,
        )))
    } else {
        Some(SecondFactor::Totp(text))
    }
}

fn roles_of(names: &[String]) -> Vec<Role> {
    names.iter().filter_map(|n| n.parse().ok()).collect()
}

fn token_pair(
    tokens: &Tokens,
    account_id: AccountId,
    session_id: SessionId,
    roles: Vec<Role>,
    refresh_token: String,
) -> Result<TokenPair, ApiError> {
    let access_token = tokens
        .issue(account_id, session_id, roles, Utc::now())
        .map_err(|e| ApiError::internal(&e))?;
    Ok(TokenPair {
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: tokens.access_ttl_seconds(),
    })
}

/// Opens a session once the caller's own checks passed: the aggregate checks the lock,
/// suspension, one-time code and second factor, and records a failure when one is wrong.
async fn open_session(
    state: &web::Data<AppState>,
    tokens: &Tokens,
    ctx: &RequestContext,
    credentials: &accounts::Credentials,
    proof: LoginProof,
    wrong_proof: fn() -> ApiError,
) -> Result<HttpResponse, ApiError> {
    let account_id = AccountId::from_uuid(credentials.account_id);
    let session_id = SessionId::from_uuid(Uuid::now_v7());
    let (refresh_token, refresh_hash) = new_refresh_token(session_id);
    let now = Utc::now();
    let session = NewSession {
        account_id,
        session_id,
        refresh_token_hash: refresh_hash,
        expires_at: now + Duration::seconds(state.settings.refresh_token_ttl_seconds),
        client_ip: ctx.client_ip.clone(),
        user_agent: ctx.user_agent.clone(),
        proof,
        occurred_at: now,
    };
    let roles = roles_of(&credentials.roles);
    let metadata = ctx.metadata(account_id.to_string(), roles.iter().max().copied());
    let worker = state.clone();
    let outcome =
        detached(async move { sessions::start(&worker.accounts, session, &metadata).await })
            .await?
            .map_err(command_error)?;
    let consistency = state
        .read_your_writes(outcome.appended().position, READS)
        .await?;
    match outcome {
        LoginOutcome::Started(_) => {
            let pair = token_pair(tokens, account_id, session_id, roles, refresh_token)?;
            Ok(consistency.mark(HttpResponse::Ok().json(pair)))
        }
        LoginOutcome::Failed(_) => Err(wrong_proof()),
    }
}

fn wrong_second_factor() -> ApiError {
    ApiError::unauthorized("invalid_mfa_code", "the two-factor code is not valid")
}

/// Starts a session with a password (and a second factor when TOTP is on).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "identity", request_body = LoginRequest,
    responses((status = 200, body = TokenPair),
              (status = 401, description = "invalid_credentials, mfa_required, invalid_mfa_code", body = crate::error::Problem),
              (status = 403, description = "account_suspended", body = crate::error::Problem),
              (status = 423, description = "account_locked (Retry-After)", body = crate::error::Problem),
              (status = 429, description = "rate_limited (Retry-After)", body = crate::error::Problem)))]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    tokens: web::Data<Tokens>,
    ctx: RequestContext,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let mut errors = Vec::new();
    if body.password.is_none() {
        errors.push(FieldError::required("password"));
    }
    let lookup = Lookup::parse(body.email.as_deref(), body.phone.as_deref(), &mut errors);
    let (Some(lookup), Some(password), true) = (lookup, body.password, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(invalid_credentials());
    }
    let Some(credentials) = lookup.find(&state).await? else {
        state
            .passwords
            .verify_decoy(password)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        return Err(invalid_credentials());
    };
    refuse_if_locked(&credentials)?;
    let matches = state
        .passwords
        .verify(password, credentials.password_hash.clone())
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let account_id = AccountId::from_uuid(credentials.account_id);
    if !matches {
        let metadata = ctx.metadata(account_id.to_string(), None);
        let worker = state.clone();
        let recorded = detached(async move {
            sessions::record_failed_login(&worker.accounts, account_id, Utc::now(), &metadata).await
        })
        .await?
        .map_err(command_error)?;
        state.read_your_writes(recorded.position, READS).await?;
        return Err(invalid_credentials());
    }
    if credentials.status != accounts::STATUS_ACTIVE {
        return Err(suspended());
    }
    let proof = LoginProof::Password {
        second_factor: second_factor(body.totp_code),
    };
    open_session(
        &state,
        &tokens,
        &ctx,
        &credentials,
        proof,
        wrong_second_factor,
    )
    .await
}

/// `POST /auth/otp/request`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OtpRequest {
    pub email: Option<String>,
    pub phone: Option<String>,
    /// `email` or `sms`.
    pub channel: Option<String>,
}

fn parse_channel(channel: Option<&str>, errors: &mut Vec<FieldError>) -> Option<CodeChannel> {
    match channel {
        Some("email") => Some(CodeChannel::Email),
        Some("sms") => Some(CodeChannel::Sms),
        Some(_) => {
            errors.push(FieldError::new(
                "channel",
                "invalid_channel",
                "channel is email or sms",
            ));
            None
        }
        None => {
            errors.push(FieldError::required("channel"));
            None
        }
    }
}

/// Sends a one-time login code. The answer is the same, and comes as fast, whether or not the
/// account exists: the lookup and the sending happen after the response, on a detached task.
#[utoipa::path(post, path = "/api/v1/auth/otp/request", tag = "identity", request_body = OtpRequest,
    responses((status = 202), (status = 422, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
#[post("/auth/otp/request")]
pub async fn otp_request(
    state: web::Data<AppState>,
    ctx: RequestContext,
    body: Json<OtpRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let mut errors = Vec::new();
    let lookup = Lookup::parse(body.email.as_deref(), body.phone.as_deref(), &mut errors);
    let channel = parse_channel(body.channel.as_deref(), &mut errors);
    let (Some(lookup), Some(channel), true) = (lookup, channel, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let worker = state.clone();
    tokio::spawn(async move {
        let found = match lookup.find(&worker).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "login code request: lookup failed");
                return;
            }
        };
        let Some(credentials) = found else {
            return;
        };
        let account_id = AccountId::from_uuid(credentials.account_id);
        let command = AccountCommand::IssueLoginCode {
            challenge: challenges::mint(challenges::LOGIN_CODE_TTL_MINUTES),
            channel,
            occurred_at: Utc::now(),
        };
        let metadata = ctx.metadata(account_id.to_string(), None);
        if let Err(e) = run_account(&worker, account_id, command, metadata).await {
            tracing::info!(code = e.code, "no login code sent");
        }
    });
    Ok(HttpResponse::Accepted().finish())
}

/// `POST /auth/otp/verify`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OtpVerifyRequest {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub code: Option<String>,
    /// Required when two-factor authentication is on.
    pub totp_code: Option<String>,
}

fn invalid_login_code() -> ApiError {
    ApiError::unauthorized(
        "login_code_invalid",
        "the login code is not valid; request a new one",
    )
}

/// Starts a session with a one-time code (5 wrong codes void it; wrong codes count towards the
/// account lock).
#[utoipa::path(post, path = "/api/v1/auth/otp/verify", tag = "identity", request_body = OtpVerifyRequest,
    responses((status = 200, body = TokenPair),
              (status = 401, description = "login_code_invalid, login_code_expired, mfa_required", body = crate::error::Problem),
              (status = 423, description = "account_locked", body = crate::error::Problem)))]
#[post("/auth/otp/verify")]
pub async fn otp_verify(
    state: web::Data<AppState>,
    tokens: web::Data<Tokens>,
    ctx: RequestContext,
    body: Json<OtpVerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let mut errors = Vec::new();
    let lookup = Lookup::parse(body.email.as_deref(), body.phone.as_deref(), &mut errors);
    let code = body.code.filter(|c| !c.trim().is_empty());
    if code.is_none() {
        errors.push(FieldError::required("code"));
    }
    let (Some(lookup), Some(code), true) = (lookup, code, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let credentials = lookup.find(&state).await?.ok_or_else(invalid_login_code)?;
    refuse_if_locked(&credentials)?;
    if credentials.status != accounts::STATUS_ACTIVE {
        return Err(suspended());
    }
    let proof = LoginProof::LoginCode {
        code,
        second_factor: second_factor(body.totp_code),
    };
    open_session(
        &state,
        &tokens,
        &ctx,
        &credentials,
        proof,
        invalid_login_code,
    )
    .await
}

/// `POST /auth/refresh`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: Option<String>,
}

/// Exchanges a refresh token for a new pair; the presented token dies. Presenting a token that
/// was already exchanged revokes the whole session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "identity", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "invalid_refresh_token, refresh_token_reused, session_ended, session_expired", body = crate::error::Problem)))]
#[post("/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    tokens: web::Data<Tokens>,
    ctx: RequestContext,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let Some(presented) = body.0.refresh_token else {
        return Err(ApiError::validation(vec![FieldError::required(
            "refresh_token",
        )]));
    };
    let invalid =
        || ApiError::unauthorized("invalid_refresh_token", "the refresh token is not valid");
    let session_id = refresh_token_session(&presented).ok_or_else(invalid)?;
    let session = accounts::get_session(&state.pool, session_id.as_uuid())
        .await?
        .ok_or_else(invalid)?;
    let account_id = AccountId::from_uuid(session.account_id);
    let (new_token, new_hash) = new_refresh_token(session_id);
    let now = Utc::now();
    let rotation = Rotation {
        account_id,
        session_id,
        presented_token_hash: refresh_token_hash(&presented),
        new_token_hash: new_hash,
        expires_at: now + Duration::seconds(state.settings.refresh_token_ttl_seconds),
        occurred_at: now,
    };
    let metadata = ctx.metadata(account_id.to_string(), None);
    let worker = state.clone();
    let outcome =
        detached(async move { sessions::refresh(&worker.accounts, rotation, &metadata).await })
            .await?
            .map_err(command_error)?;
    match outcome {
        RefreshOutcome::Rotated(appended) => {
            let consistency = state.read_your_writes(appended.position, READS).await?;
            let account = accounts::get_account(&state.pool, account_id.as_uuid())
                .await?
                .ok_or_else(invalid)?;
            let pair = token_pair(
                &tokens,
                account_id,
                session_id,
                roles_of(&account.roles),
                new_token,
            )?;
            Ok(consistency.mark(HttpResponse::Ok().json(pair)))
        }
        RefreshOutcome::ReuseDetected(appended) => {
            state.read_your_writes(appended.position, READS).await?;
            tracing::warn!(%session_id, "refresh token reuse: session revoked");
            Err(ApiError::unauthorized(
                "refresh_token_reused",
                "this refresh token was already used; the session has been revoked",
            ))
        }
    }
}

/// Ends the caller's session. Ending a session that has already ended is not an error.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "identity", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = crate::error::Problem)))]
#[post("/auth/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    caller: TokenHolder,
) -> Result<HttpResponse, ApiError> {
    let metadata = caller.context.metadata(caller.account_id.to_string(), None);
    let worker = state.clone();
    let (account_id, session_id) = (caller.account_id, caller.session_id);
    let result = detached(async move {
        sessions::end(
            &worker.accounts,
            account_id,
            session_id,
            Utc::now(),
            &metadata,
        )
        .await
    })
    .await?;
    let consistency = match result {
        Ok(appended) => state.read_your_writes(appended.position, READS).await?,
        Err(CommandError::Refused(AccountError::SessionNotActive)) => Consistency::CaughtUp,
        Err(e) => return Err(command_error(e)),
    };
    Ok(consistency.mark(HttpResponse::NoContent().finish()))
}
