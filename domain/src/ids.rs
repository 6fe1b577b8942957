//! Typed identifiers. Each wraps a UUID chosen by the caller (the domain never generates ids), so
//! an `AccountId` can never be passed where a `SessionId` is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A string that does not spell a UUID was offered as an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind} id: expected a UUID such as 0190f3a1-7c2e-7d3b-9a4e-2f1c5b8d6e70")]
pub struct InvalidId {
    kind: &'static str,
}

impl InvalidId {
    /// Which kind of id was being parsed (`"account"`, `"session"`, `"payment"`, `"withdrawal"`).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Stable machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        "invalid_id"
    }
}

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID chosen by the caller.
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The wrapped UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| InvalidId { kind: $kind })
            }
        }
    };
}

uuid_id!(
    /// Identifies one `Account` aggregate (also its aggregate id in the event store).
    AccountId,
    "account"
);

uuid_id!(
    /// Identifies one login session inside an `Account`.
    SessionId,
    "session"
);

uuid_id!(
    /// Identifies one challenge sent to an account holder (an email link, a one-time code, a
    /// password reset, a two-factor setup). Secrets derived from it never enter the domain.
    ChallengeId,
    "challenge"
);

uuid_id!(
    /// Identifies one top-up (a payment into a wallet) across the wallet, the gateway and the
    /// webhooks that settle it.
    PaymentId,
    "payment"
);

uuid_id!(
    /// Identifies one withdrawal request inside a `Wallet`.
    WithdrawalId,
    "withdrawal"
);

uuid_id!(
    /// Identifies one datacenter (region) of the catalog.
    DatacenterId,
    "datacenter"
);

uuid_id!(
    /// Identifies one operating-system image of the catalog.
    ImageId,
    "image"
);

uuid_id!(
    /// Identifies one plan (a fixed VM size with its prices) of the catalog.
    PlanId,
    "plan"
);

uuid_id!(
    /// Identifies one discount code aggregate: a UUIDv5 of the code text (`discount::id_of`).
    DiscountCodeId,
    "discount_code"
);

uuid_id!(
    /// Identifies one order of a VM.
    OrderId,
    "order"
);

uuid_id!(
    /// Identifies one invoice.
    InvoiceId,
    "invoice"
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const SAMPLE: &str = "0190f3a1-7c2e-7d3b-9a4e-2f1c5b8d6e70";

    #[test]
    fn an_id_displays_as_the_hyphenated_uuid() {
        let uuid = Uuid::parse_str(SAMPLE).unwrap();

        let id = AccountId::from_uuid(uuid);

        assert_eq!(id.to_string(), SAMPLE);
        assert_eq!(id.as_uuid(), uuid);
    }

    #[test]
    fn an_id_parses_back_from_its_display_form() {
        let id = SessionId::from_uuid(Uuid::parse_str(SAMPLE).unwrap());

        let parsed: SessionId = id.to_string().parse().unwrap();

        assert_eq!(parsed, id);
    }

    #[test]
    fn a_string_that_is_not_a_uuid_is_refused_with_the_kind_of_id() {
        let account = "not-a-uuid".parse::<AccountId>().unwrap_err();
        let session = "".parse::<SessionId>().unwrap_err();

        let payment = "42".parse::<PaymentId>().unwrap_err();
        let withdrawal = "0190f3a1".parse::<WithdrawalId>().unwrap_err();

        assert_eq!(account.kind(), "account");
        assert_eq!(session.kind(), "session");
        assert_eq!(payment.kind(), "payment");
        assert_eq!(withdrawal.kind(), "withdrawal");
        assert_eq!(account.code(), "invalid_id");
    }

    #[test]
    fn an_id_serialises_as_a_bare_uuid_string() {
        let id = AccountId::from_uuid(Uuid::parse_str(SAMPLE).unwrap());

        let json = serde_json::to_string(&id).unwrap();
        let back: AccountId = serde_json::from_str(&json).unwrap();

        assert_eq!(json, format!("\"{SAMPLE}\""));
        assert_eq!(back, id);
    }
}
