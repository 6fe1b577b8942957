//! Discount code use cases: staff create and update codes; the orders flow checks a code (a
//! quote's dry run), redeems it for an order, and releases the redemption of an order that was
//! cancelled or expired unpaid.
//!
//! Every decision is the `DiscountCode` aggregate's ([`DiscountCode::check`] for dry runs and
//! redemptions alike); this module only finds the aggregate (its id is derived from the code,
//! [`id_of`]) and answers what the orders flow needs. Limits hold under concurrency because every
//! redemption is an append to the code's own stream: `AggregateStore` serialises commands on one
//! code inside a process, and the event store's optimistic check (with retries) across processes.

use std::sync::Arc;

use chrono::Utc;
use sqlx::PgPool;
use stratus_domain::discount::{
    id_of, CodeText, DiscountCode, DiscountCommand, DiscountError, DiscountEvent, DiscountServices,
    DiscountTerms, RedemptionRequest, TermsPatch,
};
use stratus_domain::pricing::DiscountValue;
use stratus_domain::{Currency, DiscountCodeId, OrderId};
use stratus_projections::FeedPosition;

use crate::aggregate_store::{AggregateStore, CommandError};
use crate::metadata::CommandMetadata;

/// The store of discount codes.
pub type DiscountCodeStore = AggregateStore<DiscountCode>;
/// What a discount code command answers.
pub type DiscountResult<T> = Result<T, CommandError<DiscountError>>;

/// The discount codes of one deployment. Cheap to clone (the store is shared).
#[derive(Clone)]
pub struct DiscountCodes {
    store: Arc<DiscountCodeStore>,
}

impl DiscountCodes {
    /// Discount codes on `pool`; amounts off must be in `settlement`.
    pub fn new(pool: PgPool, settlement: Currency) -> Self {
        Self {
            store: Arc::new(AggregateStore::new(pool, DiscountServices { settlement })),
        }
    }

    /// The underlying store (for tools and tests).
    pub fn store(&self) -> &DiscountCodeStore {
        &self.store
    }

    /// Creates `code` with `terms`: its id and the feed position of the creation.
    ///
    /// # Errors
    /// Refused with [`DiscountError::CodeTaken`] when the code exists, or with the rule the
    /// terms break.
    #[tracing::instrument(skip_all, fields(code = %code))]
    pub async fn create(
        &self,
        code: CodeText,
        terms: DiscountTerms,
        metadata: &CommandMetadata,
    ) -> DiscountResult<(DiscountCodeId, Option<FeedPosition>)> {
        let id = id_of(&code);
        let command = DiscountCommand::Create {
            code,
            terms,
            occurred_at: Utc::now(),
        };
        let appended = self
            .store
            .execute(&id.to_string(), command, metadata)
            .await?;
        Ok((id, appended.position))
    }

    /// Changes some terms of the code `id`; `None` when the patch changed nothing.
    ///
    /// # Errors
    /// Refused with [`DiscountError::NotFound`], the rule the new terms break, or a limit below
    /// what is in use.
    #[tracing::instrument(skip_all, fields(code_id = %id))]
    pub async fn update(
        &self,
        id: DiscountCodeId,
        patch: TermsPatch,
        metadata: &CommandMetadata,
    ) -> DiscountResult<Option<FeedPosition>> {
        let command = DiscountCommand::Update {
            patch,
            occurred_at: Utc::now(),
        };
        let appended = self
            .store
            .execute(&id.to_string(), command, metadata)
            .await?;
        Ok(appended.position)
    }

    /// A dry run for a quote: whether `code` applies to `request`, and its value. Records
    /// nothing; a later [`DiscountCodes::redeem`] decides again on the state at that time.
    ///
    /// # Errors
    /// Refused with the first rule of [`DiscountCode::check`] that fails
    /// ([`DiscountError::NotFound`] for a code that was never created).
    #[tracing::instrument(skip_all, fields(code = %code))]
    pub async fn check(
        &self,
        code: &CodeText,
        request: &RedemptionRequest,
    ) -> DiscountResult<(DiscountCodeId, DiscountValue)> {
        let id = id_of(code);
        let aggregate = self.store.load(&id.to_string()).await?;
        let value = aggregate.check(request).map_err(CommandError::Refused)?;
        Ok((id, value))
    }

    /// Redeems `code` for `order_id`: takes one place in its limits and answers the value the
    /// order gets. Idempotent per order: asking again for the same order records nothing and
    /// answers the value of the first redemption (read back from the log), even if the code has
    /// changed or run out since.
    ///
    /// # Errors
    /// Refused with the first rule of [`DiscountCode::check`] that fails.
    #[tracing::instrument(skip_all, fields(code = %code, order_id = %order_id))]
    pub async fn redeem(
        &self,
        code: &CodeText,
        order_id: OrderId,
        request: &RedemptionRequest,
        metadata: &CommandMetadata,
    ) -> DiscountResult<(DiscountCodeId, DiscountValue)> {
        let id = id_of(code);
        let command = DiscountCommand::Redeem {
            order_id,
            account_id: request.account_id,
            plan_id: request.plan_id,
            billing_period: request.billing_period,
            first_order: request.first_order,
            at: request.at,
        };
        let appended = self
            .store
            .execute(&id.to_string(), command, metadata)
            .await?;
        let fresh: Vec<DiscountEvent> = appended.events.into_iter().map(|e| e.payload).collect();
        let events = if fresh.is_empty() {
            self.store
                .load_events(&id.to_string())
                .await?
                .into_iter()
                .map(|e| e.payload)
                .collect()
        } else {
            fresh
        };
        let value = events.iter().rev().find_map(|event| match event {
            DiscountEvent::DiscountRedeemed {
                order_id: redeemed,
                value,
                ..
            } if *redeemed == order_id => Some(*value),
            _ => None,
        });
        let value = value.ok_or_else(|| {
            CommandError::infra(std::io::Error::other(format!(
                "discount code {id} accepted order {order_id} but holds no redemption for it"
            )))
        })?;
        Ok((id, value))
    }

    /// Gives the redemption of `order_id` back to the pool of the code `code_id` (the order was
    /// cancelled or expired unpaid). `true` when a redemption was released; `false` when the
    /// order held none (never redeemed, or released already).
    ///
    /// # Errors
    /// Refused with [`DiscountError::NotFound`] when no code has this id.
    #[tracing::instrument(skip_all, fields(code_id = %code_id, order_id = %order_id))]
    pub async fn release(
        &self,
        code_id: DiscountCodeId,
        order_id: OrderId,
        metadata: &CommandMetadata,
    ) -> DiscountResult<bool> {
        let command = DiscountCommand::Release {
            order_id,
            at: Utc::now(),
        };
        let appended = self
            .store
            .execute(&code_id.to_string(), command, metadata)
            .await?;
        Ok(!appended.events.is_empty())
    }
}
