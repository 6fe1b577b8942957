//! Verifying a phone number: the code is checked by the Account aggregate, and a verified number
//! belongs to one account only, through a claim in `unique_claims` taken before the command.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use sqlx::PgPool;
use stratus_domain::account::{Account, AccountCommand, AccountError, AccountEvent};
use stratus_domain::{AccountId, Phone};

use crate::aggregate_store::{AggregateStore, Appended, CommandError};
use crate::metadata::CommandMetadata;
use crate::unique_claims::{self, ClaimError};

/// The claim scope of verified phone numbers.
pub const PHONE_SCOPE: &str = "account.phone";

/// Why a phone was not verified.
#[derive(Debug, thiserror::Error)]
pub enum PhoneVerificationError {
    #[error("the phone number is verified on another account")]
    PhoneTaken,
    #[error(transparent)]
    Command(#[from] CommandError<AccountError>),
}

/// What a verification attempt did.
#[derive(Debug)]
pub enum PhoneOutcome {
    Verified(Appended<Account>),
    /// A wrong code, recorded against the challenge's attempts.
    WrongCode(Appended<Account>),
}

/// Claims `phone` for the account, then presents `code`; the claim is released unless the phone
/// ends up verified.
pub async fn verify(
    store: &AggregateStore<Account>,
    pool: &PgPool,
    account_id: AccountId,
    phone: &Phone,
    code: String,
    occurred_at: DateTime<Utc>,
    metadata: &CommandMetadata,
) -> Result<PhoneOutcome, PhoneVerificationError> {
    let owner = account_id.to_string();
    match unique_claims::claim(pool, PHONE_SCOPE, phone.as_str(), Account::TYPE, &owner).await {
        Ok(()) => {}
        Err(ClaimError::Taken) => return Err(PhoneVerificationError::PhoneTaken),
        Err(ClaimError::Database(e)) => return Err(CommandError::infra(e).into()),
    }
    let result = store
        .execute(
            &owner,
            AccountCommand::VerifyPhone { code, occurred_at },
            metadata,
        )
        .await;
    let verified = result.as_ref().is_ok_and(|appended| {
        appended
            .events
            .iter()
            .any(|e| matches!(e.payload, AccountEvent::PhoneVerified { .. }))
    });
    if !verified {
        release(pool, phone, account_id).await;
    }
    let appended = result?;
    Ok(if verified {
        PhoneOutcome::Verified(appended)
    } else {
        PhoneOutcome::WrongCode(appended)
    })
}

/// Gives up the account's claim on a phone it no longer has verified.
pub async fn release(pool: &PgPool, phone: &Phone, account_id: AccountId) {
    if let Err(e) =
        unique_claims::release(pool, PHONE_SCOPE, phone.as_str(), &account_id.to_string()).await
    {
        tracing::error!(error = %e, "could not release a phone claim");
    }
}
