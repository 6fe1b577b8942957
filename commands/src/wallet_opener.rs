//! The wallet-opener reactor: opens a wallet, in the deployment's settlement currency, for every
//! account that registers.
//!
//! Opening is idempotent (an open wallet refuses `Open`, which this reactor takes as done), and
//! the command id is derived from the registration event, so a replay, a retried batch or a
//! rebuild never opens anything twice. Wallet commands also open a missing wallet themselves, so
//! a customer who tops up before this reactor has run is not refused.

use futures::future::BoxFuture;
use sqlx::PgConnection;
use stratus_domain::account::Account;
use stratus_domain::AccountId;
use stratus_projections::feed::{Subscriber, SubscriberError};
use stratus_projections::stored_event::StoredEvent;
use uuid::Uuid;

use crate::metadata::CommandMetadata;
use crate::wallets::Wallets;

/// The subscriber name (its checkpoint row).
pub const NAME: &str = "wallet-opener";

/// Namespace of the command ids this reactor derives from registration events.
const COMMAND_NAMESPACE: Uuid = Uuid::from_u128(0x3a7d_0c55_91e2_4b6f_8d14_f0b9_62ce_a817);

/// Opens the wallet of every registered account.
#[derive(Clone)]
pub struct WalletOpener {
    wallets: Wallets,
}

impl WalletOpener {
    pub fn new(wallets: Wallets) -> Self {
        Self { wallets }
    }
}

impl Subscriber for WalletOpener {
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        const TYPES: &[&str] = &[<Account as cqrs_es::Aggregate>::TYPE];
        Some(TYPES)
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn apply<'a>(
        &'a self,
        _tx: &'a mut PgConnection,
        events: &'a [StoredEvent],
    ) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(async move {
            for stored in events {
                if stored.aggregate_type != <Account as cqrs_es::Aggregate>::TYPE
                    || stored.event_type != "AccountRegistered"
                {
                    continue;
                }
                let account_id = Uuid::parse_str(&stored.aggregate_id)
                    .map(AccountId::from_uuid)
                    .map_err(|e| SubscriberError::decode(stored, e))?;
                let event_key = format!(
                    "{}:{}:{}",
                    stored.aggregate_type, stored.aggregate_id, stored.sequence
                );
                let command_id = Uuid::new_v5(&COMMAND_NAMESPACE, event_key.as_bytes());
                let mut metadata = CommandMetadata::system(command_id, &event_key);
                metadata.correlation_id = stored.aggregate_id.clone();
                self.wallets
                    .open(account_id, &metadata)
                    .await
                    .map_err(|e| SubscriberError::Command(e.to_string()))?;
            }
            Ok(())
        })
    }

    /// Nothing to empty: the wallets it opened are facts in the log.
    fn reset<'a>(
        &'a self,
        _tx: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(async { Ok(()) })
    }
}
