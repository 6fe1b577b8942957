//! Problem details (RFC 9457) and the one table that maps every failure to HTTP.
//!
//! Refused commands become 4xx with a stable `code`; conflicts that survived the retries become 409;
//! infrastructure failures become an opaque 500 whose cause goes to the log only, except that an
//! idempotency table out of reach is a 503 (nothing ran, so the client may safely retry).

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use stratus_commands::CommandError;
use stratus_domain::account::AccountError;
use stratus_domain::discount::DiscountError;
use stratus_domain::invoice::InvoiceError;
use stratus_domain::wallet::WalletError;
use stratus_domain::ValueError;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The JSON field, dotted for nested fields (`custom.vcpus`).
    pub field: String,
    /// A stable machine code for the rule that failed.
    pub code: String,
    /// A human explanation.
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }

    /// The field error for a value type that refused its input.
    pub fn from_value(field: &str, err: &ValueError) -> Self {
        Self::new(field, err.code(), err.to_string())
    }

    /// The field error for a required field that is absent.
    pub fn required(field: &str) -> Self {
        Self::new(field, "required", format!("{field} is required"))
    }
}

/// Parses a required field with a value type's constructor, collecting a field error (missing or
/// refused) instead of stopping at the first one.
pub fn required_field<T>(
    errors: &mut Vec<FieldError>,
    name: &str,
    value: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, ValueError>,
) -> Option<T> {
    match value.map(parse) {
        None => {
            errors.push(FieldError::required(name));
            None
        }
        Some(Err(e)) => {
            errors.push(FieldError::from_value(name, &e));
            None
        }
        Some(Ok(v)) => Some(v),
    }
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine code; clients switch on this, never on text.
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error on its way to becoming a problem+json response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub www_authenticate: bool,
    /// Seconds for a `Retry-After` header (429, 423).
    pub retry_after_seconds: Option<u64>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            www_authenticate: false,
            retry_after_seconds: None,
        }
    }

    /// Adds a `Retry-After` header.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }

    /// 422 with the list of fields that failed.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "one or more fields are invalid",
            )
        }
    }

    /// 401 that tells the client to authenticate with a bearer token.
    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            www_authenticate: true,
            ..Self::new(StatusCode::UNAUTHORIZED, code, detail)
        }
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your roles do not allow this",
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} was not found"),
        )
    }

    /// An opaque 500; `cause` is logged, never shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side; the request id identifies it in our logs",
        )
    }

    fn title(&self) -> String {
        self.status.canonical_reason().unwrap_or("Error").to_owned()
    }

    /// The problem body. The request it answers is named by the `X-Request-Id` response header.
    pub fn problem(&self) -> Problem {
        Problem {
            type_uri: format!("urn:stratus:problem:{}", self.code),
            title: self.title(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            errors: self.errors.clone(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        if self.www_authenticate {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let Some(seconds) = self.retry_after_seconds {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(self.problem())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        Self::internal(&err)
    }
}

impl From<stratus_projections::FeedError> for ApiError {
    fn from(err: stratus_projections::FeedError) -> Self {
        Self::internal(&err)
    }
}

impl From<stratus_commands::detached::TaskLost> for ApiError {
    fn from(err: stratus_commands::detached::TaskLost) -> Self {
        Self::internal(&err)
    }
}

impl From<crate::registration::RegistrationFailed> for ApiError {
    fn from(err: crate::registration::RegistrationFailed) -> Self {
        use crate::registration::RegistrationFailed as F;
        match err {
            F::EmailTaken => ApiError::new(
                StatusCode::CONFLICT,
                "email_taken",
                "an account with this email already exists",
            ),
            F::Command(e) => command_error(e),
            F::Hashing(e) => ApiError::internal(&e),
            F::Lost(e) => ApiError::internal(&e),
            F::Feed(e) => ApiError::internal(&e),
        }
    }
}

/// Retry-After of 503 `idempotency_unavailable`: the database is usually back within seconds.
pub const IDEMPOTENCY_UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 1;

impl From<crate::idempotency::IdempotencyError> for ApiError {
    fn from(err: crate::idempotency::IdempotencyError) -> Self {
        use crate::idempotency::IdempotencyError as E;
        match err {
            E::InvalidKey(invalid) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                format!(
                    "{invalid}: send 1 to {} printable ASCII characters",
                    crate::idempotency::KEY_MAX_CHARS
                ),
            ),
            E::Reused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was already used for a different request; use a new key",
            ),
            E::InProgress => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_progress",
                "a request with this Idempotency-Key is still running; retry shortly",
            )
            .retry_after(crate::idempotency::IN_PROGRESS_RETRY_AFTER_SECONDS),
            // Not an opaque 500: nothing ran, and retrying the same request is safe.
            E::Unavailable(cause) => {
                tracing::error!(error = %cause, "idempotency keys unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "idempotency_unavailable",
                    "the Idempotency-Key cannot be checked right now and nothing was done; retry shortly",
                )
                .retry_after(IDEMPOTENCY_UNAVAILABLE_RETRY_AFTER_SECONDS)
            }
        }
    }
}

/// The table: every refusal of the Account aggregate and the HTTP answer it gets.
pub fn account_refusal(err: &AccountError) -> ApiError {
    use AccountError as E;
    let (status, code) = match err {
        E::AlreadyRegistered => (StatusCode::CONFLICT, "already_registered"),
        E::NotRegistered => (StatusCode::NOT_FOUND, "account_not_found"),
        E::NoRoles => (StatusCode::UNPROCESSABLE_ENTITY, "no_roles"),
        E::SessionAlreadyExists => (StatusCode::CONFLICT, "session_already_exists"),
        E::SessionNotFound | E::InvalidRefreshToken => {
            return ApiError::unauthorized(
                "invalid_refresh_token",
                "the refresh token is not valid",
            )
        }
        E::SessionNotActive => {
            return ApiError::unauthorized("session_ended", "the session has ended; log in again")
        }
        E::SessionExpired => {
            return ApiError::unauthorized(
                "session_expired",
                "the session has expired; log in again",
            )
        }
        E::AccountLocked { until } => {
            let seconds = (*until - chrono::Utc::now()).num_seconds().max(1);
            return ApiError::new(StatusCode::LOCKED, "account_locked", err.to_string())
                .retry_after(u64::try_from(seconds).unwrap_or(1));
        }
        E::AccountSuspended => (StatusCode::FORBIDDEN, "account_suspended"),
        E::MfaRequired => return ApiError::unauthorized("mfa_required", err.to_string()),
        E::LoginCodeInvalid => {
            return ApiError::unauthorized("login_code_invalid", err.to_string())
        }
        E::LoginCodeExpired => {
            return ApiError::unauthorized("login_code_expired", err.to_string())
        }
        E::EmailAlreadyVerified => (StatusCode::CONFLICT, "email_already_verified"),
        E::VerificationInvalid => (StatusCode::BAD_REQUEST, "verification_invalid"),
        E::VerificationExpired => (StatusCode::GONE, "verification_expired"),
        E::NoPhone => (StatusCode::CONFLICT, "no_phone"),
        E::PhoneAlreadyVerified => (StatusCode::CONFLICT, "phone_already_verified"),
        E::PhoneCodeInvalid => (StatusCode::BAD_REQUEST, "phone_code_invalid"),
        E::ResetInvalid => (StatusCode::BAD_REQUEST, "reset_token_invalid"),
        E::MfaAlreadyEnabled => (StatusCode::CONFLICT, "mfa_already_enabled"),
        E::MfaNotEnabled => (StatusCode::CONFLICT, "mfa_not_enabled"),
        E::MfaSetupNotStarted => (StatusCode::CONFLICT, "mfa_setup_not_started"),
        E::InvalidSecondFactor => (StatusCode::BAD_REQUEST, "invalid_mfa_code"),
        E::KycAlreadyPending => (StatusCode::CONFLICT, "kyc_already_pending"),
        E::KycAlreadyApproved => (StatusCode::CONFLICT, "kyc_already_approved"),
        E::KycNotPending => (StatusCode::CONFLICT, "kyc_not_pending"),
        E::AlreadySuspended => (StatusCode::CONFLICT, "already_suspended"),
        E::NotSuspended => (StatusCode::CONFLICT, "not_suspended"),
    };
    ApiError::new(status, code, err.to_string())
}

/// An aggregate's refusals, each with its status and stable code.
pub trait Refusal {
    fn answer(&self) -> ApiError;
}

impl Refusal for AccountError {
    fn answer(&self) -> ApiError {
        account_refusal(self)
    }
}

impl Refusal for WalletError {
    fn answer(&self) -> ApiError {
        wallet_refusal(self)
    }
}

/// The answer to a refused wallet command. Refusals of the amount itself are field errors on
/// `amount`, so that a form can show them beside the input.
pub fn wallet_refusal(err: &WalletError) -> ApiError {
    use WalletError as E;
    let field = |field: &str| {
        ApiError::validation(vec![FieldError::new(field, err.code(), err.to_string())])
    };
    let (status, code) = match err {
        E::CurrencyMismatch { .. }
        | E::AmountNotPositive
        | E::AmountNegative
        | E::TooManyDecimals { .. }
        | E::AmountOverflow
        | E::TopUpAmountMismatch
        | E::CreditLimitBelowUsage => return field("amount"),
        E::InvalidDestination => return field("destination"),
        E::WalletNotOpen => (StatusCode::NOT_FOUND, "wallet_not_found"),
        E::WalletAlreadyOpen => (StatusCode::CONFLICT, "wallet_already_open"),
        E::InsufficientFunds => (StatusCode::PAYMENT_REQUIRED, "insufficient_funds"),
        E::ReferenceReused => (StatusCode::CONFLICT, "reference_reused"),
        E::DebitNotFound => (StatusCode::UNPROCESSABLE_ENTITY, "debit_not_found"),
        E::RefundExceedsDebit => (StatusCode::UNPROCESSABLE_ENTITY, "refund_exceeds_debit"),
        E::PaymentAlreadyExists => (StatusCode::CONFLICT, "payment_already_exists"),
        E::PaymentNotFound => (StatusCode::NOT_FOUND, "payment_not_found"),
        E::PaymentAlreadySettled => (StatusCode::CONFLICT, "payment_already_settled"),
        E::WithdrawalAlreadyExists => (StatusCode::CONFLICT, "withdrawal_already_exists"),
        E::WithdrawalNotFound => (StatusCode::NOT_FOUND, "withdrawal_not_found"),
        E::WithdrawalAlreadySettled => (StatusCode::CONFLICT, "withdrawal_already_settled"),
        E::WithdrawalNotApproved => (StatusCode::CONFLICT, "withdrawal_not_approved"),
    };
    ApiError::new(status, code, err.to_string())
}

impl Refusal for DiscountError {
    fn answer(&self) -> ApiError {
        discount_refusal(self)
    }
}

/// The answer to a refused discount code command or check. Terms staff entered that break a rule
/// are field errors on their field. A customer's use of a code that breaks a rule (a quote, an
/// order) is 422 with the rule's own code (`discount_code_expired`, …) and a field error on
/// `discount_code`, an unknown code included; the admin routes answer an unknown code with 404
/// through [`discount_admin_error`].
pub fn discount_refusal(err: &DiscountError) -> ApiError {
    use DiscountError as E;
    let field = |field: &str| {
        ApiError::validation(vec![FieldError::new(field, err.code(), err.to_string())])
    };
    match err {
        E::InvalidCode => field("code"),
        E::InvalidPercentOff => field("percent_off"),
        E::InvalidAmountOff => field("amount_off"),
        E::CurrencyMismatch { .. } => field("amount_off.currency"),
        E::InvalidValidity => field("valid_until"),
        E::InvalidMaxRedemptions | E::MaxRedemptionsBelowRedeemed => field("max_redemptions"),
        E::InvalidMaxPerAccount | E::MaxPerAccountBelowRedeemed => field("max_per_account"),
        E::TooManyPlans => field("plan_ids"),
        E::CodeTaken => ApiError::new(StatusCode::CONFLICT, "code_taken", err.to_string()),
        E::NotFound
        | E::Inactive
        | E::NotYetValid
        | E::Expired
        | E::Exhausted
        | E::AccountLimit
        | E::NotForPlan
        | E::NotForPeriod
        | E::FirstOrderOnly => ApiError {
            errors: vec![FieldError::new(
                "discount_code",
                err.code(),
                err.to_string(),
            )],
            ..ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                err.code(),
                err.to_string(),
            )
        },
    }
}

/// A discount code command from the admin routes, which name the code in the path: an unknown
/// code is a 404 there, everything else goes through [`command_error`].
pub fn discount_admin_error(err: CommandError<DiscountError>) -> ApiError {
    match err {
        CommandError::Refused(DiscountError::NotFound) => ApiError::new(
            StatusCode::NOT_FOUND,
            "discount_code_not_found",
            "the discount code was not found",
        ),
        other => command_error(other),
    }
}

impl Refusal for InvoiceError {
    fn answer(&self) -> ApiError {
        invoice_refusal(self)
    }
}

/// The answer to a refused invoice command. A quote that cannot be invoiced is a 422 (the orders
/// flow priced it wrongly); a state that forbids the change is a 409.
pub fn invoice_refusal(err: &InvoiceError) -> ApiError {
    use InvoiceError as E;
    let status = match err {
        E::NotDrafted => StatusCode::NOT_FOUND,
        E::NoLines
        | E::CurrencyMismatch
        | E::NotInMinorUnits
        | E::NegativeAmount
        | E::LineAmountMismatch
        | E::TotalsDoNotAddUp
        | E::TaxDoesNotMatchRate => StatusCode::UNPROCESSABLE_ENTITY,
        E::InvalidPaymentReference => {
            return ApiError::validation(vec![FieldError::new(
                "payment_reference",
                err.code(),
                err.to_string(),
            )])
        }
        E::AlreadyDrafted
        | E::AlreadyNumbered
        | E::NumberYearMismatch
        | E::NotIssued
        | E::InvoiceVoid
        | E::AlreadyPaid
        | E::PaidInvoiceCannotBeVoided => StatusCode::CONFLICT,
    };
    ApiError::new(status, err.code(), err.to_string())
}

/// Maps a command failure once: refused → the aggregate's table, conflict → 409, infrastructure → 500.
pub fn command_error<E: std::error::Error + Refusal>(err: CommandError<E>) -> ApiError {
    match err {
        CommandError::Refused(e) => e.answer(),
        CommandError::Conflict => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the resource was changed concurrently too many times; retry the request",
        ),
        CommandError::Infrastructure(cause) => ApiError::internal(&cause),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registration::RegistrationFailed;

    fn answer(err: ApiError) -> (u16, &'static str, bool) {
        (err.status.as_u16(), err.code, err.www_authenticate)
    }

    #[test]
    fn every_account_refusal_has_its_status_and_stable_code() {
        use AccountError as E;
        let table = [
            (E::AlreadyRegistered, (409, "already_registered", false)),
            (E::NotRegistered, (404, "account_not_found", false)),
            (E::NoRoles, (422, "no_roles", false)),
            (
                E::SessionAlreadyExists,
                (409, "session_already_exists", false),
            ),
            (E::SessionNotFound, (401, "invalid_refresh_token", true)),
            (E::InvalidRefreshToken, (401, "invalid_refresh_token", true)),
            (E::SessionNotActive, (401, "session_ended", true)),
            (E::SessionExpired, (401, "session_expired", true)),
            (E::AccountSuspended, (403, "account_suspended", false)),
            (E::MfaRequired, (401, "mfa_required", true)),
            (E::LoginCodeInvalid, (401, "login_code_invalid", true)),
            (E::LoginCodeExpired, (401, "login_code_expired", true)),
            (
                E::EmailAlreadyVerified,
                (409, "email_already_verified", false),
            ),
            (E::VerificationInvalid, (400, "verification_invalid", false)),
            (E::VerificationExpired, (410, "verification_expired", false)),
            (E::NoPhone, (409, "no_phone", false)),
            (
                E::PhoneAlreadyVerified,
                (409, "phone_already_verified", false),
            ),
            (E::PhoneCodeInvalid, (400, "phone_code_invalid", false)),
            (E::ResetInvalid, (400, "reset_token_invalid", false)),
            (E::MfaAlreadyEnabled, (409, "mfa_already_enabled", false)),
            (E::MfaNotEnabled, (409, "mfa_not_enabled", false)),
            (E::MfaSetupNotStarted, (409, "mfa_setup_not_started", false)),
            (E::InvalidSecondFactor, (400, "invalid_mfa_code", false)),
            (E::KycAlreadyPending, (409, "kyc_already_pending", false)),
            (E::KycAlreadyApproved, (409, "kyc_already_approved", false)),
            (E::KycNotPending, (409, "kyc_not_pending", false)),
            (E::AlreadySuspended, (409, "already_suspended", false)),
            (E::NotSuspended, (409, "not_suspended", false)),
        ];
        for (refusal, expected) in table {
            assert_eq!(answer(account_refusal(&refusal)), expected, "{refusal:?}");
        }
    }

    #[test]
    fn a_lock_is_a_423_with_retry_after() {
        let until = chrono::Utc::now() + chrono::TimeDelta::seconds(90);
        let err = account_refusal(&AccountError::AccountLocked { until });
        assert_eq!(answer(err.clone()), (423, "account_locked", false));
        assert!(matches!(err.retry_after_seconds, Some(80..=90)));
    }

    #[test]
    fn a_conflict_after_retries_is_a_409_and_infrastructure_an_opaque_500() {
        assert_eq!(
            answer(command_error(CommandError::<AccountError>::Conflict)),
            (409, "conflict", false)
        );
        let broken = command_error(CommandError::<AccountError>::Infrastructure(
            "disk on fire".into(),
        ));
        assert_eq!(answer(broken.clone()), (500, "internal_error", false));
        assert!(
            !broken.detail.contains("disk on fire"),
            "causes stay in the log"
        );
    }

    #[test]
    fn every_invoice_refusal_has_its_status_and_the_domain_code() {
        use InvoiceError as E;
        let table = [
            (E::NotDrafted, 404),
            (E::AlreadyDrafted, 409),
            (E::NoLines, 422),
            (E::CurrencyMismatch, 422),
            (E::NotInMinorUnits, 422),
            (E::NegativeAmount, 422),
            (E::LineAmountMismatch, 422),
            (E::TotalsDoNotAddUp, 422),
            (E::TaxDoesNotMatchRate, 422),
            (E::AlreadyNumbered, 409),
            (E::NumberYearMismatch, 409),
            (E::NotIssued, 409),
            (E::InvoiceVoid, 409),
            (E::AlreadyPaid, 409),
            (E::PaidInvoiceCannotBeVoided, 409),
        ];
        for (refusal, status) in table {
            let err = invoice_refusal(&refusal);
            assert_eq!((err.status.as_u16(), err.code), (status, refusal.code()));
        }
        let field = invoice_refusal(&E::InvalidPaymentReference);
        assert_eq!(
            (field.status.as_u16(), field.code),
            (422, "validation_failed")
        );
        assert_eq!(field.errors[0].field, "payment_reference");
    }

    #[test]
    fn a_taken_email_is_a_409_whichever_door_the_registration_came_through() {
        let err = ApiError::from(RegistrationFailed::EmailTaken);
        assert_eq!(answer(err), (409, "email_taken", false));
    }

    #[test]
    fn every_idempotency_refusal_has_its_status_and_stable_code() {
        use crate::idempotency::{IdempotencyError as E, InvalidKey};
        let table = [
            (
                E::InvalidKey(InvalidKey::Empty),
                (400, "invalid_idempotency_key"),
                None,
            ),
            (
                E::InvalidKey(InvalidKey::TooLong),
                (400, "invalid_idempotency_key"),
                None,
            ),
            (
                E::InvalidKey(InvalidKey::NotPrintableAscii),
                (400, "invalid_idempotency_key"),
                None,
            ),
            (
                E::InvalidKey(InvalidKey::Repeated),
                (400, "invalid_idempotency_key"),
                None,
            ),
            (E::Reused, (422, "idempotency_key_reused"), None),
            (E::InProgress, (409, "idempotency_key_in_progress"), Some(1)),
            (
                E::Unavailable(sqlx::Error::PoolTimedOut),
                (503, "idempotency_unavailable"),
                Some(1),
            ),
        ];
        for (refusal, expected, retry_after) in table {
            let shown = format!("{refusal:?}");
            let err = ApiError::from(refusal);
            assert_eq!((err.status.as_u16(), err.code), expected, "{shown}");
            assert_eq!(err.retry_after_seconds, retry_after, "{shown}");
        }
        let broken = ApiError::from(E::Unavailable(sqlx::Error::Protocol("disk on fire".into())));
        assert!(
            !broken.detail.contains("disk on fire"),
            "causes stay in the log"
        );
    }

    #[test]
    fn every_discount_refusal_has_its_status_code_and_field() {
        use DiscountError as E;
        let table = [
            (E::InvalidCode, 422, "validation_failed", Some("code")),
            (
                E::InvalidPercentOff,
                422,
                "validation_failed",
                Some("percent_off"),
            ),
            (
                E::InvalidAmountOff,
                422,
                "validation_failed",
                Some("amount_off"),
            ),
            (
                E::CurrencyMismatch {
                    expected: stratus_domain::Currency::EUR,
                    found: stratus_domain::Currency::USD,
                },
                422,
                "validation_failed",
                Some("amount_off.currency"),
            ),
            (
                E::InvalidValidity,
                422,
                "validation_failed",
                Some("valid_until"),
            ),
            (
                E::InvalidMaxRedemptions,
                422,
                "validation_failed",
                Some("max_redemptions"),
            ),
            (
                E::MaxRedemptionsBelowRedeemed,
                422,
                "validation_failed",
                Some("max_redemptions"),
            ),
            (
                E::InvalidMaxPerAccount,
                422,
                "validation_failed",
                Some("max_per_account"),
            ),
            (
                E::MaxPerAccountBelowRedeemed,
                422,
                "validation_failed",
                Some("max_per_account"),
            ),
            (E::TooManyPlans, 422, "validation_failed", Some("plan_ids")),
            (E::CodeTaken, 409, "code_taken", None),
            (
                E::NotFound,
                422,
                "discount_code_not_found",
                Some("discount_code"),
            ),
            (
                E::Inactive,
                422,
                "discount_code_inactive",
                Some("discount_code"),
            ),
            (
                E::NotYetValid,
                422,
                "discount_code_not_yet_valid",
                Some("discount_code"),
            ),
            (
                E::Expired,
                422,
                "discount_code_expired",
                Some("discount_code"),
            ),
            (
                E::Exhausted,
                422,
                "discount_code_exhausted",
                Some("discount_code"),
            ),
            (
                E::AccountLimit,
                422,
                "discount_code_account_limit",
                Some("discount_code"),
            ),
            (
                E::NotForPlan,
                422,
                "discount_code_not_for_plan",
                Some("discount_code"),
            ),
            (
                E::NotForPeriod,
                422,
                "discount_code_not_for_period",
                Some("discount_code"),
            ),
            (
                E::FirstOrderOnly,
                422,
                "discount_code_first_order_only",
                Some("discount_code"),
            ),
        ];
        for (refusal, status, code, field) in table {
            let err = discount_refusal(&refusal);
            assert_eq!(
                (err.status.as_u16(), err.code),
                (status, code),
                "{refusal:?}"
            );
            let fields: Vec<(&str, &str)> = err
                .errors
                .iter()
                .map(|e| (e.field.as_str(), e.code.as_str()))
                .collect();
            match field {
                Some(field) => assert_eq!(fields, vec![(field, refusal.code())], "{refusal:?}"),
                None => assert!(fields.is_empty(), "{refusal:?}"),
            }
        }
        let unknown = discount_admin_error(CommandError::Refused(E::NotFound));
        assert_eq!(answer(unknown), (404, "discount_code_not_found", false));
        let taken = discount_admin_error(CommandError::Refused(E::CodeTaken));
        assert_eq!(answer(taken), (409, "code_taken", false));
    }

    #[test]
    fn the_problem_body_carries_the_code_and_field_errors() {
        let problem = ApiError::validation(vec![FieldError::required("email")]).problem();
        assert_eq!(problem.status, 422);
        assert_eq!(problem.code, "validation_failed");
        assert_eq!(problem.type_uri, "urn:stratus:problem:validation_failed");
        assert_eq!(problem.errors[0].field, "email");
    }
}
