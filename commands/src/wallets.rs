//! Wallet use cases: opening a wallet, top-ups through a gateway and their settlement (by a
//! signed webhook or by billing staff), debits and refunds, withdrawals, and the limits.
//!
//! Every money movement is a command on the account's `Wallet` aggregate, which decides and
//! records it with the balance after; this module only finds the wallet, talks to the gateway and
//! turns gateway answers into commands. Exactly-once comes from the aggregate: a debit or refund
//! reference, a payment id or a withdrawal id applied again is a no-op, so a retried request, a
//! redelivered webhook or a replayed reactor never moves money twice.

use std::sync::Arc;

use chrono::Utc;
use sqlx::PgPool;
use stratus_domain::wallet::{
    DebitReason, PaymentGateway as GatewayKind, RefundReason, Wallet, WalletCommand, WalletError,
    WalletEvent,
};
use stratus_domain::{AccountId, Currency, LedgerReference, Money, PaymentId, WithdrawalId};
use stratus_projections::FeedPosition;
use uuid::Uuid;

use crate::aggregate_store::{AggregateStore, Appended, CommandError};
use crate::metadata::CommandMetadata;
use crate::payments::manual::ManualGateway;
use crate::payments::webhook::{WebhookEvent, WebhookEventKind};
use crate::payments::{
    Checkout, GatewayError, IdempotencyKey, IntentId, IntentRequest, PaymentGateway,
};
use crate::unique_claims::{self, ClaimError};

/// The store of wallets.
pub type WalletStore = AggregateStore<Wallet>;
/// What a wallet command answers.
pub type WalletResult<T> = Result<T, CommandError<WalletError>>;

/// The `unique_claims` scope of bank-transfer references: two pending transfers never share one.
pub const BANK_REFERENCE_SCOPE: &str = "bank_reference";

/// Namespace of the command ids derived from gateway events (UUIDv5 of gateway and event id).
const WEBHOOK_COMMAND_NAMESPACE: Uuid = Uuid::from_u128(0x8c2e_41d7_63a9_4f0b_b1e5_27c4_d90a_6e13);

/// The wallets of one deployment: the store and the currency new wallets are opened in.
#[derive(Clone)]
pub struct Wallets {
    store: Arc<WalletStore>,
    settlement: Currency,
}

impl Wallets {
    /// Wallets on `pool`, opened in `settlement`.
    pub fn new(pool: PgPool, settlement: Currency) -> Self {
        Self {
            store: Arc::new(AggregateStore::new(pool, ())),
            settlement,
        }
    }

    /// The currency every wallet of this deployment is opened in.
    pub fn settlement_currency(&self) -> Currency {
        self.settlement
    }

    /// The underlying store (for tools and tests).
    pub fn store(&self) -> &WalletStore {
        &self.store
    }

    /// Whether this process has seen the wallet of `account_id` open, from its cache and without
    /// a lookup. A wallet never closes, so `true` is final; `false` only means "not known here".
    pub fn known_open(&self, account_id: AccountId) -> bool {
        self.store
            .cached(&account_id.to_string(), Wallet::is_open)
            .unwrap_or(false)
    }

    /// Opens the wallet of `account_id`; an already open wallet is left as it is. The position
    /// is where the wallet is known open: of the opening, or of the wallet's newest event when it
    /// was open already (perhaps opened an instant ago by the reactor, which a read model may not
    /// show yet).
    pub async fn open(
        &self,
        account_id: AccountId,
        metadata: &CommandMetadata,
    ) -> WalletResult<Option<FeedPosition>> {
        let command = WalletCommand::Open {
            account_id,
            currency: self.settlement,
            occurred_at: Utc::now(),
        };
        match self
            .store
            .execute(&account_id.to_string(), command, metadata)
            .await
        {
            Ok(appended) => Ok(appended.position),
            Err(CommandError::Refused(WalletError::WalletAlreadyOpen)) => {
                self.store.latest_position(&account_id.to_string()).await
            }
            Err(other) => Err(other),
        }
    }

    /// Runs `command` on the wallet of `account_id`, opening the wallet first when the account
    /// has none yet (the reactor that opens wallets at registration may not have run yet).
    pub async fn execute(
        &self,
        account_id: AccountId,
        command: WalletCommand,
        metadata: &CommandMetadata,
    ) -> WalletResult<Appended<Wallet>> {
        let id = account_id.to_string();
        match self.store.execute(&id, command.clone(), metadata).await {
            Err(CommandError::Refused(WalletError::WalletNotOpen)) => {
                self.open(account_id, metadata).await?;
                self.store.execute(&id, command, metadata).await
            }
            other => other,
        }
    }

    /// Takes `amount` out of the wallet for something bought. Applying the same `reference` again
    /// changes nothing and answers with the first debit's receipt; the same reference with a
    /// different amount is refused (`reference_reused`).
    pub async fn debit(
        &self,
        account_id: AccountId,
        reference: LedgerReference,
        amount: Money,
        reason: DebitReason,
        metadata: &CommandMetadata,
    ) -> WalletResult<Receipt> {
        let command = WalletCommand::Debit {
            reference: reference.clone(),
            amount,
            reason,
            occurred_at: Utc::now(),
        };
        let appended = self.execute(account_id, command, metadata).await?;
        self.receipt(account_id, &reference, appended).await
    }

    /// Gives money back, optionally naming the debit it returns. Idempotent by `reference`.
    pub async fn refund(
        &self,
        account_id: AccountId,
        reference: LedgerReference,
        refunds_debit: Option<LedgerReference>,
        amount: Money,
        reason: RefundReason,
        metadata: &CommandMetadata,
    ) -> WalletResult<Receipt> {
        let command = WalletCommand::Refund {
            reference: reference.clone(),
            refunds_debit,
            amount,
            reason,
            occurred_at: Utc::now(),
        };
        let appended = self.execute(account_id, command, metadata).await?;
        self.receipt(account_id, &reference, appended).await
    }

    /// The receipt of the movement with `reference`: from what was just appended, or, for a
    /// repeated reference, from the log (the first result).
    async fn receipt(
        &self,
        account_id: AccountId,
        reference: &LedgerReference,
        appended: Appended<Wallet>,
    ) -> WalletResult<Receipt> {
        let replayed = appended.events.is_empty();
        let events: Vec<WalletEvent> = if replayed {
            self.store
                .load_events(&account_id.to_string())
                .await?
                .into_iter()
                .map(|envelope| envelope.payload)
                .collect()
        } else {
            appended.events.into_iter().map(|e| e.payload).collect()
        };
        let movement = events.iter().rev().find_map(|event| match event {
            WalletEvent::WalletDebited {
                reference: r,
                amount,
                balance_after,
                ..
            }
            | WalletEvent::WalletRefunded {
                reference: r,
                amount,
                balance_after,
                ..
            } if r == reference => Some((*amount, *balance_after)),
            _ => None,
        });
        let (amount, balance_after) = movement.ok_or_else(|| {
            CommandError::infra(std::io::Error::other(format!(
                "the wallet of {account_id} applied {reference} but holds no movement for it"
            )))
        })?;
        Ok(Receipt {
            reference: reference.clone(),
            amount,
            balance_after,
            replayed,
            position: appended.position,
        })
    }
}

/// What a debit or refund did.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub reference: LedgerReference,
    pub amount: Money,
    pub balance_after: Money,
    /// The reference had already been applied; nothing moved this time.
    pub replayed: bool,
    /// The feed position of the appended event, for read-your-writes (`None` when replayed).
    pub position: Option<FeedPosition>,
}

/// The payment gateways this deployment accepts; a gateway left unconfigured is refused.
#[derive(Clone, Default)]
pub struct Gateways {
    pub stripe: Option<Arc<dyn PaymentGateway>>,
    pub manual: Option<Arc<ManualGateway>>,
}

impl Gateways {
    fn get(&self, kind: GatewayKind) -> Option<&dyn PaymentGateway> {
        match kind {
            GatewayKind::Stripe => self.stripe.as_deref(),
            GatewayKind::Manual => self
                .manual
                .as_deref()
                .map(|manual| manual as &dyn PaymentGateway),
        }
    }

    /// Whether `kind` is configured.
    pub fn accepts(&self, kind: GatewayKind) -> bool {
        self.get(kind).is_some()
    }
}

/// Why a top-up could not be started.
#[derive(Debug, thiserror::Error)]
pub enum TopUpError {
    #[error("the {0:?} gateway is not configured")]
    GatewayNotConfigured(GatewayKind),
    #[error("the gateway answered: {0}")]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Wallet(#[from] CommandError<WalletError>),
    #[error("claiming the bank reference: {0}")]
    Claim(#[source] sqlx::Error),
}

/// A started top-up, waiting for the money.
#[derive(Debug)]
pub struct StartedTopUp {
    pub payment_id: PaymentId,
    pub amount: Money,
    pub gateway: GatewayKind,
    /// The gateway's id: a Stripe PaymentIntent, a bank reference.
    pub intent_id: IntentId,
    /// What the customer needs to pay.
    pub checkout: Option<Checkout>,
    pub position: Option<FeedPosition>,
}

/// How many fresh payment ids a bank-transfer top-up tries when its derived reference is
/// already claimed (a collision of the reference's 50 bits; practically never more than one).
const BANK_REFERENCE_ATTEMPTS: u32 = 3;

/// Starts a top-up of `amount` through `kind`: asks the gateway for an intent, then records the
/// top-up as pending. If recording fails, the Stripe intent is cancelled so that it cannot be
/// paid into nothing.
pub async fn start_top_up(
    wallets: &Wallets,
    gateways: &Gateways,
    pool: &PgPool,
    account_id: AccountId,
    amount: Money,
    kind: GatewayKind,
    metadata: &CommandMetadata,
) -> Result<StartedTopUp, TopUpError> {
    let gateway = gateways
        .get(kind)
        .ok_or(TopUpError::GatewayNotConfigured(kind))?;
    let owner = account_id.to_string();
    let mut attempt = 0;
    let (payment_id, intent) = loop {
        attempt += 1;
        let payment_id = PaymentId::from_uuid(Uuid::now_v7());
        let intent = gateway
            .create_intent(IntentRequest {
                payment_id,
                amount,
                customer_reference: account_id,
                idempotency_key: IdempotencyKey::for_top_up(&payment_id),
            })
            .await?;
        if kind != GatewayKind::Manual {
            break (payment_id, intent);
        }
        let claimed = unique_claims::claim(
            pool,
            BANK_REFERENCE_SCOPE,
            intent.id.as_str(),
            <Wallet as cqrs_es::Aggregate>::TYPE,
            &owner,
        )
        .await;
        match claimed {
            Ok(()) => break (payment_id, intent),
            Err(ClaimError::Taken) if attempt < BANK_REFERENCE_ATTEMPTS => continue,
            Err(ClaimError::Taken) => {
                return Err(TopUpError::Claim(sqlx::Error::Protocol(
                    "no free bank reference after several payment ids".to_owned(),
                )))
            }
            Err(ClaimError::Database(e)) => return Err(TopUpError::Claim(e)),
        }
    };
    let command = WalletCommand::InitiateTopUp {
        payment_id,
        amount,
        gateway: kind,
        gateway_reference: Some(intent.id.as_str().to_owned()),
        occurred_at: Utc::now(),
    };
    match wallets.execute(account_id, command, metadata).await {
        Ok(appended) => Ok(StartedTopUp {
            payment_id,
            amount,
            gateway: kind,
            intent_id: intent.id,
            checkout: intent.checkout,
            position: appended.position,
        }),
        Err(err) => {
            if kind == GatewayKind::Manual {
                let released =
                    unique_claims::release(pool, BANK_REFERENCE_SCOPE, intent.id.as_str(), &owner)
                        .await;
                if let Err(e) = released {
                    tracing::warn!(error = %e, "could not release a bank reference claim");
                }
            } else if let Err(e) = gateway.cancel_intent(&intent.id).await {
                tracing::warn!(error = %e, intent = %intent.id.as_str(), "could not cancel the intent of an unrecorded top-up");
            }
            Err(err.into())
        }
    }
}

/// What a verified gateway event did.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookOutcome {
    /// The top-up was credited now.
    Credited { payment_id: PaymentId },
    /// The top-up was failed now (the intent was cancelled).
    Failed { payment_id: PaymentId },
    /// The event had already been applied: nothing changed.
    AlreadyApplied { payment_id: PaymentId },
    /// Nothing to do (another event type, a failed attempt the customer may retry, an intent
    /// that Stratus did not make).
    Ignored(&'static str),
}

/// Why a verified gateway event could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    /// The event names a payment no wallet knows (yet): the gateway should deliver it again.
    #[error("no top-up with payment id {0}")]
    UnknownPayment(PaymentId),
    #[error(transparent)]
    Wallet(#[from] CommandError<WalletError>),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Applies a verified Stripe event to the top-up it names. Redeliveries and concurrent
/// deliveries of one event credit once: the wallet completes a top-up only once, and the command
/// id is derived from the event id.
pub async fn settle_stripe_event(
    wallets: &Wallets,
    pool: &PgPool,
    event: &WebhookEvent,
) -> Result<WebhookOutcome, SettleError> {
    let (intent, succeeded) = match &event.kind {
        WebhookEventKind::PaymentSucceeded(intent) => (intent, true),
        WebhookEventKind::PaymentCanceled(intent) => (intent, false),
        WebhookEventKind::PaymentFailed { .. } => {
            return Ok(WebhookOutcome::Ignored(
                "a failed attempt; the customer may retry",
            ))
        }
        WebhookEventKind::Other => return Ok(WebhookOutcome::Ignored("not a payment event")),
    };
    let Some(payment_id) = intent.payment_id else {
        return Ok(WebhookOutcome::Ignored("an intent not made by Stratus"));
    };
    let account_id = payment_owner(pool, payment_id)
        .await?
        .ok_or(SettleError::UnknownPayment(payment_id))?;
    let command_id = Uuid::new_v5(
        &WEBHOOK_COMMAND_NAMESPACE,
        format!("stripe:{}", event.id.as_str()).as_bytes(),
    );
    let mut metadata =
        CommandMetadata::system(command_id, &format!("stripe:{}", event.id.as_str()));
    metadata.correlation_id = payment_id.to_string();
    let command = if succeeded {
        WalletCommand::CompleteTopUp {
            payment_id,
            amount_received: intent.amount,
            occurred_at: Utc::now(),
        }
    } else {
        WalletCommand::FailTopUp {
            payment_id,
            reason: "the payment was cancelled at the gateway".to_owned(),
            occurred_at: Utc::now(),
        }
    };
    let appended = match wallets.execute(account_id, command, &metadata).await {
        Ok(appended) => appended,
        // A cancellation after completion (or the reverse) changes nothing that was settled.
        Err(CommandError::Refused(WalletError::PaymentAlreadySettled)) => {
            return Ok(WebhookOutcome::AlreadyApplied { payment_id })
        }
        Err(other) => return Err(other.into()),
    };
    Ok(match (appended.events.is_empty(), succeeded) {
        (true, _) => WebhookOutcome::AlreadyApplied { payment_id },
        (false, true) => WebhookOutcome::Credited { payment_id },
        (false, false) => WebhookOutcome::Failed { payment_id },
    })
}

/// The account whose wallet holds the top-up `payment_id`, from the wallets read model.
pub async fn payment_owner(
    pool: &PgPool,
    payment_id: PaymentId,
) -> Result<Option<AccountId>, sqlx::Error> {
    let owner: Option<Uuid> = sqlx::query_scalar(
        "SELECT account_id FROM wallet_transactions WHERE id = $1 AND kind = 'top_up'",
    )
    .bind(payment_id.as_uuid())
    .fetch_optional(pool)
    .await?;
    Ok(owner.map(AccountId::from_uuid))
}

/// The account whose wallet holds the withdrawal `withdrawal_id`, from the wallets read model.
pub async fn withdrawal_owner(
    pool: &PgPool,
    withdrawal_id: WithdrawalId,
) -> Result<Option<AccountId>, sqlx::Error> {
    let owner: Option<Uuid> = sqlx::query_scalar(
        "SELECT account_id FROM wallet_transactions WHERE id = $1 AND kind = 'withdrawal'",
    )
    .bind(withdrawal_id.as_uuid())
    .fetch_optional(pool)
    .await?;
    Ok(owner.map(AccountId::from_uuid))
}
