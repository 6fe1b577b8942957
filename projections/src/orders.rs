//! The orders projection: `orders`, one row per order, and the queries the API and the expiry
//! sweep run on it.
//!
//! Amounts are copied from the quote the order was placed with; nothing is recomputed here.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Row};
use stratus_domain::order::{CancelledBy, Order, OrderEvent, OrderItem, Placement};
use stratus_domain::pricing::{Quote, Resources};
use stratus_domain::{AccountId, OrderId};
use uuid::Uuid;

use crate::feed::{Subscriber, SubscriberError};
use crate::stored_event::StoredEvent;

/// The subscriber name of this projection.
pub const NAME: &str = "orders";

/// Statuses of an order row (API.md).
pub const STATUS_PENDING_PAYMENT: &str = "pending_payment";
pub const STATUS_PAID: &str = "paid";
pub const STATUS_CANCELLED: &str = "cancelled";
/// Every status, for validating filters.
pub const STATUSES: [&str; 3] = [STATUS_PENDING_PAYMENT, STATUS_PAID, STATUS_CANCELLED];

/// Why a cancelled order was cancelled.
pub const CANCELLED_BY_CUSTOMER: &str = "customer";
pub const CANCELLED_BY_STAFF: &str = "staff";
pub const CANCELLED_EXPIRED: &str = "expired";

/// Builds `orders`.
pub struct OrdersProjection;

impl Subscriber for OrdersProjection {
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        const TYPES: &[&str] = &[<Order as cqrs_es::Aggregate>::TYPE];
        Some(TYPES)
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [StoredEvent],
    ) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(async move {
            for event in events {
                if event.aggregate_type != <Order as cqrs_es::Aggregate>::TYPE {
                    continue;
                }
                let decoded: OrderEvent = serde_json::from_value(event.payload.clone())
                    .map_err(|e| SubscriberError::decode(event, e))?;
                let order_id = Uuid::parse_str(&event.aggregate_id)
                    .map_err(|e| SubscriberError::decode(event, e))?;
                apply_one(tx, event, order_id, decoded).await?;
            }
            Ok(())
        })
    }

    fn reset<'a>(&'a self, tx: &'a mut PgConnection) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM orders").execute(&mut *tx).await?;
            Ok(())
        })
    }
}

async fn apply_one(
    tx: &mut PgConnection,
    stored: &StoredEvent,
    order_id: Uuid,
    event: OrderEvent,
) -> Result<(), SubscriberError> {
    let at = stored.recorded_at;
    match event {
        OrderEvent::OrderPlaced(placement) => insert(tx, stored, &placement).await?,
        OrderEvent::OrderPaid {
            payment_reference,
            paid_at,
            ..
        } => {
            sqlx::query(
                "UPDATE orders SET status = $2, payment_reference = $3, paid_at = $4, \
                 updated_at = $5 WHERE order_id = $1",
            )
            .bind(order_id)
            .bind(STATUS_PAID)
            .bind(payment_reference.as_str())
            .bind(paid_at)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        OrderEvent::OrderCancelled { by, cancelled_at } => {
            let reason = match by {
                CancelledBy::Customer => CANCELLED_BY_CUSTOMER,
                CancelledBy::Staff => CANCELLED_BY_STAFF,
            };
            cancel(tx, order_id, reason, cancelled_at, at).await?;
        }
        OrderEvent::OrderExpired { expired_at } => {
            cancel(tx, order_id, CANCELLED_EXPIRED, expired_at, at).await?;
        }
    }
    Ok(())
}

async fn insert(
    tx: &mut PgConnection,
    stored: &StoredEvent,
    placement: &Placement,
) -> Result<(), SubscriberError> {
    let quote = &placement.quote;
    let (item_kind, plan_id) = match &placement.item {
        OrderItem::Plan { plan_id, .. } => ("plan", Some(plan_id.as_uuid())),
        OrderItem::Custom { .. } => ("custom", None),
    };
    let ssh_keys: Vec<&str> = placement.ssh_keys.iter().map(|k| k.as_str()).collect();
    sqlx::query(
        "INSERT INTO orders (order_id, account_id, status, hostname, item_kind, plan_id, \
         resources, datacenter_id, image_id, ssh_keys, billing_period, currency, subtotal_micros, \
         discount_micros, tax_micros, total_micros, discount_code, discount_code_id, quote, \
         invoice_id, placed_at, pay_by, updated_at, placed_position) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21, $22, $23, $24) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(placement.order_id.as_uuid())
    .bind(placement.account_id.as_uuid())
    .bind(STATUS_PENDING_PAYMENT)
    .bind(placement.hostname.as_str())
    .bind(item_kind)
    .bind(plan_id)
    .bind(Json(placement.item.resources()))
    .bind(placement.datacenter_id.as_uuid())
    .bind(placement.image_id.as_uuid())
    .bind(Json(ssh_keys))
    .bind(placement.billing_period.as_str())
    .bind(quote.currency.code())
    .bind(quote.subtotal.micros())
    .bind(quote.discount.micros())
    .bind(quote.tax_amount.micros())
    .bind(quote.total.micros())
    .bind(placement.discount.as_ref().map(|d| d.code.as_str()))
    .bind(placement.discount.as_ref().map(|d| d.code_id.as_uuid()))
    .bind(Json(quote))
    .bind(placement.invoice_id.as_uuid())
    .bind(placement.placed_at)
    .bind(placement.pay_by)
    .bind(stored.recorded_at)
    .bind(stored.position.global_position)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn cancel(
    tx: &mut PgConnection,
    order_id: Uuid,
    reason: &str,
    cancelled_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
) -> Result<(), SubscriberError> {
    sqlx::query(
        "UPDATE orders SET status = $2, cancel_reason = $3, cancelled_at = $4, updated_at = $5 \
         WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(STATUS_CANCELLED)
    .bind(reason)
    .bind(cancelled_at)
    .bind(recorded_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// One order as the read model holds it.
#[derive(Debug, Clone)]
pub struct OrderView {
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub status: String,
    pub cancel_reason: Option<String>,
    pub hostname: String,
    /// `plan` or `custom`.
    pub item_kind: String,
    pub plan_id: Option<Uuid>,
    pub resources: Resources,
    pub datacenter_id: Uuid,
    pub image_id: Uuid,
    pub ssh_keys: Vec<String>,
    pub billing_period: String,
    /// The priced order, as on its invoice.
    pub quote: Quote,
    pub invoice_id: Uuid,
    pub discount_code: Option<String>,
    pub payment_reference: Option<String>,
    pub placed_at: DateTime<Utc>,
    pub pay_by: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Newest-first order key; also the paging cursor.
    pub position: i64,
}

const COLUMNS: &str = "order_id, account_id, status, cancel_reason, hostname, item_kind, plan_id, \
     resources, datacenter_id, image_id, ssh_keys, billing_period, quote, invoice_id, \
     discount_code, payment_reference, placed_at, pay_by, paid_at, cancelled_at, updated_at, \
     placed_position";

fn order_of(row: &PgRow) -> Result<OrderView, sqlx::Error> {
    let Json(resources): Json<Resources> = row.try_get("resources")?;
    let Json(ssh_keys): Json<Vec<String>> = row.try_get("ssh_keys")?;
    let Json(quote): Json<Quote> = row.try_get("quote")?;
    Ok(OrderView {
        order_id: row.try_get("order_id")?,
        account_id: row.try_get("account_id")?,
        status: row.try_get("status")?,
        cancel_reason: row.try_get("cancel_reason")?,
        hostname: row.try_get("hostname")?,
        item_kind: row.try_get("item_kind")?,
        plan_id: row.try_get("plan_id")?,
        resources,
        datacenter_id: row.try_get("datacenter_id")?,
        image_id: row.try_get("image_id")?,
        ssh_keys,
        billing_period: row.try_get("billing_period")?,
        quote,
        invoice_id: row.try_get("invoice_id")?,
        discount_code: row.try_get("discount_code")?,
        payment_reference: row.try_get("payment_reference")?,
        placed_at: row.try_get("placed_at")?,
        pay_by: row.try_get("pay_by")?,
        paid_at: row.try_get("paid_at")?,
        cancelled_at: row.try_get("cancelled_at")?,
        updated_at: row.try_get("updated_at")?,
        position: row.try_get("placed_position")?,
    })
}

/// One order by id.
pub async fn get_order(pool: &PgPool, order_id: OrderId) -> Result<Option<OrderView>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM orders WHERE order_id = $1"))
        .bind(order_id.as_uuid())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(order_of).transpose()
}

/// Filters of an order list; every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub account_id: Option<Uuid>,
    pub status: Option<String>,
    pub datacenter_id: Option<Uuid>,
    pub plan_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only orders placed before this list position (the cursor).
    pub before: Option<i64>,
    pub limit: i64,
}

/// Orders, newest first.
pub async fn list_orders(
    pool: &PgPool,
    filter: &OrderFilter,
) -> Result<Vec<OrderView>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM orders \
         WHERE ($1::uuid IS NULL OR account_id = $1) \
           AND ($2::text IS NULL OR status = $2) \
           AND ($3::uuid IS NULL OR datacenter_id = $3) \
           AND ($4::uuid IS NULL OR plan_id = $4) \
           AND ($5::timestamptz IS NULL OR placed_at >= $5) \
           AND ($6::timestamptz IS NULL OR placed_at < $6) \
           AND ($7::bigint IS NULL OR placed_position < $7) \
         ORDER BY placed_position DESC LIMIT $8"
    ))
    .bind(filter.account_id)
    .bind(&filter.status)
    .bind(filter.datacenter_id)
    .bind(filter.plan_id)
    .bind(filter.from)
    .bind(filter.to)
    .bind(filter.before)
    .bind(filter.limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(order_of).collect()
}

/// Pending orders whose payment deadline is before `now`, oldest deadline first.
pub async fn due_for_expiry(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<OrderId>, sqlx::Error> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT order_id FROM orders WHERE status = $1 AND pay_by < $2 ORDER BY pay_by LIMIT $3",
    )
    .bind(STATUS_PENDING_PAYMENT)
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(ids.into_iter().map(OrderId::from_uuid).collect())
}

/// Whether `account_id` has ever had an order paid: a discount code for first orders only is
/// refused to such an account.
pub async fn has_paid_order(pool: &PgPool, account_id: AccountId) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM orders WHERE account_id = $1 AND paid_at IS NOT NULL)",
    )
    .bind(account_id.as_uuid())
    .fetch_one(pool)
    .await
}
