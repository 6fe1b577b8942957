//! Verifying Stripe's signed webhooks and reading the payment events in them.
//!
//! Stripe signs each delivery with every signing secret of the endpoint and sends
//! `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>,v1=…`, where each `v1` is
//! `HMAC-SHA256(secret, "<t>.<raw body>")`. [`WebhookVerifier::verify`] accepts a delivery when
//! one `v1` matches one configured secret (several secrets: rotation, old and new both valid until
//! the old one is removed) and `t` is within the tolerance of `now`. The comparison is constant
//! time (`hmac`'s `verify_slice`); unknown schemes such as `v0` are ignored.
//!
//! ## Replays
//!
//! The timestamp bounds how long a captured delivery can be replayed (five minutes by default),
//! nothing more: within that window the same delivery verifies again, and Stripe itself redelivers
//! an event until it is acknowledged. **The caller must deduplicate by [`WebhookEvent::id`]** and
//! settle payments idempotently (the wallet completes a top-up once).
//!
//! The verifier reads no clock: `now` is passed in. It checks the signature over the exact bytes
//! received, so the body must not be parsed or re-encoded before.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::stripe::IntentObject;
use super::{ApiErrorDetail, Intent, Secret};

/// The header that carries Stripe's signature.
pub const STRIPE_SIGNATURE_HEADER: &str = "Stripe-Signature";
/// How far `t` may be from now, either way: Stripe's own libraries default to five minutes, long
/// enough for clock drift and a slow delivery, short enough to bound replays.
pub const DEFAULT_TOLERANCE_SECONDS: u64 = 300;
/// The event of a paid intent.
pub const PAYMENT_INTENT_SUCCEEDED: &str = "payment_intent.succeeded";
/// The event of a failed payment attempt (the intent goes back to `requires_payment_method`).
pub const PAYMENT_INTENT_PAYMENT_FAILED: &str = "payment_intent.payment_failed";
/// The event of a canceled intent.
pub const PAYMENT_INTENT_CANCELED: &str = "payment_intent.canceled";
/// Longest accepted event id, in characters (Stripe's ids are far shorter).
pub const WEBHOOK_EVENT_ID_MAX_CHARS: usize = 255;
/// The signature scheme this verifier checks; others are ignored.
const SIGNATURE_SCHEME: &str = "v1";
/// Most `key=value` entries read from one header. Stripe sends one `t` and one `v1` per active
/// secret (two during a rotation); the bound keeps a forged header from buying many comparisons.
const MAX_SIGNATURE_HEADER_ENTRIES: usize = 16;
/// Bytes of an HMAC-SHA256 tag.
const SIGNATURE_BYTES: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Checks Stripe's webhook signatures against the endpoint's signing secrets (`whsec_…`).
#[derive(Debug, Clone)]
pub struct WebhookVerifier {
    secrets: Vec<Secret>,
    tolerance_seconds: u64,
}

/// A verifier was asked for with no signing secret, or with an empty one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a webhook verifier needs at least one signing secret, and none may be empty")]
pub struct NoSigningSecret;

impl WebhookVerifier {
    /// A verifier that accepts a signature made with any of `secrets`, with the default tolerance
    /// ([`DEFAULT_TOLERANCE_SECONDS`]).
    ///
    /// # Errors
    /// [`NoSigningSecret`] when `secrets` is empty or one of them is the empty string (an HMAC
    /// with an empty key is a checksum anyone can compute).
    pub fn new(secrets: Vec<Secret>) -> Result<Self, NoSigningSecret> {
        if secrets.is_empty() || secrets.iter().any(|secret| secret.expose().is_empty()) {
            return Err(NoSigningSecret);
        }
        Ok(Self {
            secrets,
            tolerance_seconds: DEFAULT_TOLERANCE_SECONDS,
        })
    }

    /// The same verifier with another tolerance.
    pub fn with_tolerance_seconds(self, tolerance_seconds: u64) -> Self {
        Self {
            tolerance_seconds,
            ..self
        }
    }

    /// How far a signature's timestamp may be from now.
    pub fn tolerance_seconds(&self) -> u64 {
        self.tolerance_seconds
    }

    /// Verifies one delivery and reads its event.
    ///
    /// `signature_header` is the raw value of [`STRIPE_SIGNATURE_HEADER`] (`None` when absent),
    /// `payload` the exact request body, `now` the receiving time.
    ///
    /// # Errors
    /// Checked in this order: [`WebhookError::MissingSignature`],
    /// [`WebhookError::MalformedSignature`], [`WebhookError::SignatureMismatch`] (no `v1` matches
    /// any secret), [`WebhookError::TimestampOutOfTolerance`] (authentic but too old or too far
    /// ahead: a replay or a skewed clock), [`WebhookError::MalformedPayload`] (authentic but not
    /// an event this code can read).
    pub fn verify(
        &self,
        signature_header: Option<&[u8]>,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<WebhookEvent, WebhookError> {
        let header =
            SignatureHeader::parse(signature_header.ok_or(WebhookError::MissingSignature)?)?;
        if !self.any_secret_signed(&header, payload) {
            return Err(WebhookError::SignatureMismatch);
        }
        let drift = i128::from(now.timestamp()) - i128::from(header.timestamp);
        if drift.unsigned_abs() > u128::from(self.tolerance_seconds) {
            return Err(WebhookError::TimestampOutOfTolerance);
        }
        WebhookEvent::parse(payload)
    }

    fn any_secret_signed(&self, header: &SignatureHeader<'_>, payload: &[u8]) -> bool {
        self.secrets.iter().any(|secret| {
            let Ok(mut mac) = HmacSha256::new_from_slice(secret.expose().as_bytes()) else {
                // HMAC takes keys of any length; this arm is never taken.
                return false;
            };
            // Signed over the timestamp as sent, not as re-printed from the parsed number.
            mac.update(header.timestamp_text.as_bytes());
            mac.update(b".");
            mac.update(payload);
            header
                .signatures
                .iter()
                .any(|signature| mac.clone().verify_slice(signature).is_ok())
        })
    }
}

/// Why a webhook delivery was not accepted. Every variant is answered with a 4xx so that Stripe
/// shows the failure; none is worth a retry by Stripe except after a fix on our side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No `Stripe-Signature` header.
    #[error("the webhook has no Stripe-Signature header")]
    MissingSignature,
    /// The header is not `t=<digits>,v1=<64 hex>,…`: not UTF-8, an entry without `=`, no or two
    /// `t`, a `v1` that is not 64 hex digits, no `v1` at all, or too many entries.
    #[error("the Stripe-Signature header is malformed")]
    MalformedSignature,
    /// No `v1` signature matches the body with any configured secret: a forged or altered
    /// delivery, or a secret we do not hold.
    #[error("the webhook signature does not match")]
    SignatureMismatch,
    /// Authentic, but signed too long ago or too far in the future.
    #[error("the webhook timestamp is outside the tolerance")]
    TimestampOutOfTolerance,
    /// Authentic, but the body is not a Stripe event this code can read.
    #[error("the webhook payload is not a readable event: {reason}")]
    MalformedPayload {
        /// What is wrong with it.
        reason: String,
    },
}

impl WebhookError {
    /// Stable machine-readable code for logs and API error bodies. Never change an existing code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingSignature => "missing_signature",
            Self::MalformedSignature => "malformed_signature",
            Self::SignatureMismatch => "signature_mismatch",
            Self::TimestampOutOfTolerance => "timestamp_out_of_tolerance",
            Self::MalformedPayload { .. } => "malformed_payload",
        }
    }
}

/// A verified Stripe event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// Stripe's event id (`evt_…`): the same for every redelivery, the key to deduplicate by.
    pub id: WebhookEventId,
    /// Stripe's event type as sent (`payment_intent.succeeded`, `charge.refunded`, …).
    pub event_type: String,
    /// What the event means for a payment.
    pub kind: WebhookEventKind,
}

/// What a verified event says about a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEventKind {
    /// [`PAYMENT_INTENT_SUCCEEDED`]: the intent is paid.
    PaymentSucceeded(Intent),
    /// [`PAYMENT_INTENT_PAYMENT_FAILED`]: an attempt failed; the customer may try again with the
    /// same intent, so this does not have to fail the top-up.
    PaymentFailed {
        /// The intent after the failed attempt.
        intent: Intent,
        /// Why the attempt failed (`card_declined`, …), when Stripe said.
        error: Option<ApiErrorDetail>,
    },
    /// [`PAYMENT_INTENT_CANCELED`]: the intent can no longer be paid.
    PaymentCanceled(Intent),
    /// Any other event type: authentic, and of no interest to payments (acknowledge it, so that
    /// Stripe stops redelivering it).
    Other,
}

/// Stripe's id of an event: 1 to [`WEBHOOK_EVENT_ID_MAX_CHARS`] printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WebhookEventId(String);

impl WebhookEventId {
    /// The id as Stripe sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl WebhookEvent {
    fn parse(payload: &[u8]) -> Result<Self, WebhookError> {
        let malformed = |reason: String| WebhookError::MalformedPayload { reason };
        let envelope: EventEnvelope =
            serde_json::from_slice(payload).map_err(|e| malformed(format!("event: {e}")))?;
        if envelope.id.is_empty()
            || envelope.id.len() > WEBHOOK_EVENT_ID_MAX_CHARS
            || !envelope.id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(malformed(format!("event id {:?}", envelope.id)));
        }
        let intent = |object: serde_json::Value| {
            serde_json::from_value::<IntentObject>(object)
                .map_err(|e| malformed(format!("{}: payment intent: {e}", envelope.event_type)))?
                .into_parts(false)
                .map_err(malformed)
        };
        let kind = match envelope.event_type.as_str() {
            PAYMENT_INTENT_SUCCEEDED => {
                WebhookEventKind::PaymentSucceeded(intent(envelope.data.object)?.0)
            }
            PAYMENT_INTENT_PAYMENT_FAILED => {
                let (intent, error) = intent(envelope.data.object)?;
                WebhookEventKind::PaymentFailed { intent, error }
            }
            PAYMENT_INTENT_CANCELED => {
                WebhookEventKind::PaymentCanceled(intent(envelope.data.object)?.0)
            }
            _ => WebhookEventKind::Other,
        };
        Ok(Self {
            id: WebhookEventId(envelope.id),
            event_type: envelope.event_type,
            kind,
        })
    }
}

/// The parts of a `Stripe-Signature` header this verifier uses.
struct SignatureHeader<'a> {
    timestamp: i64,
    timestamp_text: &'a str,
    signatures: Vec<[u8; SIGNATURE_BYTES]>,
}

impl<'a> SignatureHeader<'a> {
    fn parse(raw: &'a [u8]) -> Result<Self, WebhookError> {
        let text = std::str::from_utf8(raw).map_err(|_| WebhookError::MalformedSignature)?;
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for (index, entry) in text.split(',').enumerate() {
            if index >= MAX_SIGNATURE_HEADER_ENTRIES {
                return Err(WebhookError::MalformedSignature);
            }
            let (key, value) = entry
                .trim()
                .split_once('=')
                .ok_or(WebhookError::MalformedSignature)?;
            match key {
                "t" => {
                    if timestamp.is_some() || !is_unix_seconds(value) {
                        return Err(WebhookError::MalformedSignature);
                    }
                    let seconds = value
                        .parse::<i64>()
                        .map_err(|_| WebhookError::MalformedSignature)?;
                    timestamp = Some((seconds, value));
                }
                SIGNATURE_SCHEME => {
                    let mut signature = [0_u8; SIGNATURE_BYTES];
                    hex::decode_to_slice(value, &mut signature)
                        .map_err(|_| WebhookError::MalformedSignature)?;
                    signatures.push(signature);
                }
                _ => {}
            }
        }
        let (timestamp, timestamp_text) = timestamp.ok_or(WebhookError::MalformedSignature)?;
        if signatures.is_empty() {
            return Err(WebhookError::MalformedSignature);
        }
        Ok(Self {
            timestamp,
            timestamp_text,
            signatures,
        })
    }
}

/// Plain decimal digits, as Stripe writes `t` (no sign, no spaces).
fn is_unix_seconds(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())
}

#[derive(Deserialize)]
struct EventEnvelope {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: serde_json::Value,
}

#[cfg(test)]
mod tests;
