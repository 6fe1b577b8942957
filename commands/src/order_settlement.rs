//! The `order-settlement` reactor: what follows from an order's payment, cancellation or expiry.
//!
//! - `OrderPaid` marks the order's invoice paid, with the payment's reference.
//! - `OrderCancelled` and `OrderExpired` void the invoice (it keeps its number: the sequence
//!   stays gapless) and return the discount code's redemption to the pool.
//!
//! Every command has an id derived from the triggering event and every step is idempotent in its
//! aggregate (paying a paid invoice with the same reference, voiding a void invoice, releasing a
//! released redemption change nothing), so a replay or a retried batch never acts twice.

use futures::future::BoxFuture;
use sqlx::PgConnection;
use stratus_domain::order::{Order, OrderEvent};
use stratus_domain::{OrderId, Reason};
use stratus_projections::feed::{Subscriber, SubscriberError};
use stratus_projections::stored_event::StoredEvent;
use uuid::Uuid;

use crate::aggregate_store::CommandError;
use crate::discount_codes::DiscountCodes;
use crate::invoices::Invoices;
use crate::metadata::CommandMetadata;
use crate::orders::Orders;

/// The subscriber name of this reactor.
pub const NAME: &str = "order-settlement";

/// Namespace of the command ids this reactor derives from events.
const COMMAND_NAMESPACE: Uuid = Uuid::from_u128(0x71c4_2e0b_9a5d_4f13_86e2_d04b_3a97_5c18);

/// Settles invoices and discount redemptions after order events.
#[derive(Clone)]
pub struct OrderSettlement {
    orders: Orders,
    invoices: Invoices,
    discounts: DiscountCodes,
}

impl OrderSettlement {
    pub fn new(orders: Orders, invoices: Invoices, discounts: DiscountCodes) -> Self {
        Self {
            orders,
            invoices,
            discounts,
        }
    }

    async fn settle(&self, stored: &StoredEvent) -> Result<(), SubscriberError> {
        let event: OrderEvent = serde_json::from_value(stored.payload.clone())
            .map_err(|e| SubscriberError::decode(stored, e))?;
        let order_id = Uuid::parse_str(&stored.aggregate_id)
            .map(OrderId::from_uuid)
            .map_err(|e| SubscriberError::decode(stored, e))?;
        let event_key = format!(
            "{}:{}:{}",
            stored.aggregate_type, stored.aggregate_id, stored.sequence
        );
        let metadata = |step: &str| {
            let key = format!("{event_key}:{step}");
            let mut metadata =
                CommandMetadata::system(Uuid::new_v5(&COMMAND_NAMESPACE, key.as_bytes()), &key);
            metadata.correlation_id = stored.aggregate_id.clone();
            metadata
        };
        let failed = |e: &dyn std::fmt::Display| SubscriberError::Command(e.to_string());
        let order = self
            .orders
            .store()
            .load(&stored.aggregate_id)
            .await
            .map_err(|e| failed(&e))?;
        let Some(invoice_id) = order.invoice_id() else {
            return Err(SubscriberError::decode(
                stored,
                "the order was never placed",
            ));
        };
        match event {
            OrderEvent::OrderPlaced(_) => {}
            OrderEvent::OrderPaid {
                payment_reference, ..
            } => {
                self.invoices
                    .mark_paid(
                        invoice_id,
                        payment_reference.as_str().to_owned(),
                        &metadata("invoice_paid"),
                    )
                    .await
                    .map_or_else(refusal_is_logged, |_| Ok(()))?;
            }
            OrderEvent::OrderCancelled { .. } | OrderEvent::OrderExpired { .. } => {
                let reason = match event {
                    OrderEvent::OrderExpired { .. } => "the order expired unpaid",
                    _ => "the order was cancelled",
                };
                let reason = Reason::parse(reason).map_err(|e| failed(&e))?;
                self.invoices
                    .void(invoice_id, reason, &metadata("invoice_void"))
                    .await
                    .map_or_else(refusal_is_logged, |_| Ok(()))?;
                if let Some(discount) = order.discount() {
                    self.discounts
                        .release(discount.code_id, order_id, &metadata("release_discount"))
                        .await
                        .map_or_else(refusal_is_logged, |_| Ok(()))?;
                }
            }
        }
        Ok(())
    }
}

/// A refused step (a rule of the invoice or code said no) is logged and skipped: retrying would
/// refuse again and stall the feed. Conflicts and infrastructure failures retry the batch.
fn refusal_is_logged<E: std::error::Error>(error: CommandError<E>) -> Result<(), SubscriberError> {
    match error {
        CommandError::Refused(refusal) => {
            tracing::warn!(error = %refusal, "order settlement step refused; skipped");
            Ok(())
        }
        other => Err(SubscriberError::Command(other.to_string())),
    }
}

impl Subscriber for OrderSettlement {
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        const TYPES: &[&str] = &[<Order as cqrs_es::Aggregate>::TYPE];
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
                if stored.aggregate_type == <Order as cqrs_es::Aggregate>::TYPE
                    && stored.event_type != "OrderPlaced"
                {
                    self.settle(stored).await?;
                }
            }
            Ok(())
        })
    }

    fn reset<'a>(
        &'a self,
        _tx: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(async { Ok(()) })
    }
}
