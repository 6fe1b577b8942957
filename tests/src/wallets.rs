//! Wallets driven through the write side (there are no wallet routes yet), and a stand-in for the
//! wallets projection where a build does not have it.

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use stratus_commands::{AggregateStore, Appended, CommandError, CommandMetadata};
use stratus_domain::wallet::{
    DebitReason, PaymentGateway, RefundReason, Wallet, WalletCommand, WalletError,
};
use stratus_domain::{AccountId, Currency, LedgerReference, Money, PaymentId, WithdrawalId};
use stratus_projections::ledger::verify::WALLETS_SUBSCRIBER;
use stratus_projections::Feed;
use uuid::Uuid;

/// How long a test waits for a projection to reach the head of the log.
pub const PROJECTION_WAIT_MS: u64 = 30_000;

/// The outcome of one wallet command.
pub type WalletResult = Result<Appended<Wallet>, CommandError<WalletError>>;

/// The wallet store of one database, with shorthands for the usual movements.
pub struct Wallets {
    pub store: AggregateStore<Wallet>,
}

impl Wallets {
    pub fn new(pool: PgPool) -> Self {
        Self {
            store: AggregateStore::new(pool, ()),
        }
    }

    /// Runs one command on the wallet of `account` as the system.
    pub async fn execute(&self, account: AccountId, command: WalletCommand) -> WalletResult {
        let metadata = CommandMetadata::system(Uuid::now_v7(), "test");
        self.store
            .execute(&account.to_string(), command, &metadata)
            .await
    }

    /// Runs a command that must be accepted.
    pub async fn accept(&self, account: AccountId, command: WalletCommand) -> Appended<Wallet> {
        let described = format!("{command:?}");
        self.execute(account, command)
            .await
            .unwrap_or_else(|e| panic!("{described}: {e}"))
    }

    /// Opens the wallet of a new account.
    pub async fn open(&self, currency: Currency) -> AccountId {
        let account = AccountId::from_uuid(Uuid::now_v7());
        self.accept(
            account,
            WalletCommand::Open {
                account_id: account,
                currency,
                occurred_at: Utc::now(),
            },
        )
        .await;
        account
    }

    /// Initiates a top-up of `amount` and completes it with `received`.
    pub async fn top_up(
        &self,
        account: AccountId,
        gateway: PaymentGateway,
        amount: Money,
        received: Money,
    ) -> PaymentId {
        let payment_id = PaymentId::from_uuid(Uuid::now_v7());
        self.accept(
            account,
            WalletCommand::InitiateTopUp {
                payment_id,
                amount,
                gateway,
                gateway_reference: None,
                occurred_at: Utc::now(),
            },
        )
        .await;
        self.accept(
            account,
            WalletCommand::CompleteTopUp {
                payment_id,
                amount_received: received,
                occurred_at: Utc::now(),
            },
        )
        .await;
        payment_id
    }

    /// Debits `amount` under the reference `reference`.
    pub async fn debit(
        &self,
        account: AccountId,
        reference: &str,
        amount: Money,
        reason: DebitReason,
    ) {
        let command = WalletCommand::Debit {
            reference: reference_of(reference),
            amount,
            reason,
            occurred_at: Utc::now(),
        };
        self.accept(account, command).await;
    }

    /// Refunds `amount` of the debit `debit` under the reference `reference`.
    pub async fn refund(
        &self,
        account: AccountId,
        reference: &str,
        debit: Option<&str>,
        amount: Money,
        reason: RefundReason,
    ) {
        let command = WalletCommand::Refund {
            reference: reference_of(reference),
            refunds_debit: debit.map(reference_of),
            amount,
            reason,
            occurred_at: Utc::now(),
        };
        self.accept(account, command).await;
    }

    /// Requests, approves and pays out a withdrawal of `amount`.
    pub async fn withdraw(&self, account: AccountId, amount: Money) -> WithdrawalId {
        let withdrawal_id = WithdrawalId::from_uuid(Uuid::now_v7());
        let staff = AccountId::from_uuid(Uuid::now_v7());
        let now = Utc::now();
        let commands = [
            WalletCommand::RequestWithdrawal {
                withdrawal_id,
                amount,
                destination: "DE89370400440532013000".to_owned(),
                occurred_at: now,
            },
            WalletCommand::ApproveWithdrawal {
                withdrawal_id,
                approved_by: staff,
                occurred_at: now,
            },
            WalletCommand::MarkWithdrawalPaidOut {
                withdrawal_id,
                occurred_at: now,
            },
        ];
        for command in commands {
            self.accept(account, command).await;
        }
        withdrawal_id
    }

    /// The wallet as its events make it.
    pub async fn replayed(&self, account: AccountId) -> Wallet {
        let mut wallet = Wallet::default();
        let events = self
            .store
            .load_events(&account.to_string())
            .await
            .unwrap_or_else(|e| panic!("load wallet {account}: {e}"));
        for envelope in events {
            cqrs_es::Aggregate::apply(&mut wallet, envelope.payload);
        }
        wallet
    }
}

/// The two wallets of [`sample_books`].
#[derive(Debug, Clone, Copy)]
pub struct SampleBooks {
    /// Stripe top-up 100.00, order debit 30.00, 5.00 of it refunded, 20.00 withdrawn and paid
    /// out: balance 55.00 EUR.
    pub eur: AccountId,
    /// Bank transfer of 50.00 announced and 45.00 received, a VM hour of 0.013889, a goodwill
    /// refund of 1.00: balance 45.986111 USD.
    pub usd: AccountId,
}

/// Two wallets in two currencies with one movement of every kind and both gateways: 13 wallet
/// events, 7 of them movements.
pub async fn sample_books(wallets: &Wallets) -> SampleBooks {
    let eur = wallets.open(Currency::EUR).await;
    let cents = |n| minor(n, Currency::EUR);
    wallets
        .top_up(eur, PaymentGateway::Stripe, cents(10_000), cents(10_000))
        .await;
    wallets
        .debit(eur, "order:1", cents(3_000), DebitReason::Order)
        .await;
    wallets
        .refund(
            eur,
            "refund:order:1",
            Some("order:1"),
            cents(500),
            RefundReason::Order,
        )
        .await;
    wallets.withdraw(eur, cents(2_000)).await;
    let usd = wallets.open(Currency::USD).await;
    let dollars = |n| minor(n, Currency::USD);
    wallets
        .top_up(usd, PaymentGateway::Manual, dollars(5_000), dollars(4_500))
        .await;
    let metered = Money::from_micros(13_889, Currency::USD);
    wallets
        .debit(usd, "vm_hour:1", metered, DebitReason::VmHour)
        .await;
    wallets
        .refund(
            usd,
            "goodwill:1",
            None,
            dollars(100),
            RefundReason::Goodwill,
        )
        .await;
    SampleBooks { eur, usd }
}

/// A ledger reference that must parse.
pub fn reference_of(text: &str) -> LedgerReference {
    LedgerReference::parse(text).unwrap_or_else(|e| panic!("reference {text:?}: {e}"))
}

/// Money in minor units (cents), which every gateway amount must be.
pub fn minor(units: i64, currency: Currency) -> Money {
    Money::from_minor_units(units, currency).unwrap_or_else(|e| panic!("{units} {currency}: {e}"))
}

/// Waits until every named projection of `feed` has applied everything in the log.
pub async fn wait_for_projections(feed: &Feed, names: &[&str]) {
    let at = feed.head().await.unwrap_or_else(|e| panic!("head: {e}"));
    let caught_up = feed
        .wait_for(names, at, Duration::from_millis(PROJECTION_WAIT_MS))
        .await
        .unwrap_or_else(|e| panic!("wait for {names:?}: {e}"));
    assert!(caught_up, "{names:?} did not reach {at} in time");
}

/// Waits until the `wallets` read model has applied the whole log (the projection runs in every
/// test app).
pub async fn current_wallets_read_model(feed: &Feed) {
    wait_for_projections(feed, &[WALLETS_SUBSCRIBER]).await;
}
