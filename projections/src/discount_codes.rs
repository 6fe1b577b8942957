//! The discount codes projection: `discount_codes` (one row per code: its current terms and how
//! many redemptions are in use) and `discount_redemptions` (one row per order that redeemed a
//! code), and the queries of the admin routes.
//!
//! Counts are copied from the events one by one; only the aggregate decides whether a redemption
//! fits the limits. Every value written comes from the events (times included), so a rebuild
//! reproduces the rows exactly.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use stratus_domain::discount::{DiscountCode, DiscountEvent, DiscountTerms};
use stratus_domain::pricing::DiscountValue;
use stratus_domain::{Currency, Money};
use uuid::Uuid;

use crate::feed::{Subscriber, SubscriberError};
use crate::stored_event::StoredEvent;

/// The subscriber name of this projection.
pub const NAME: &str = "discount_codes";

/// Projects DiscountCode events into `discount_codes` and `discount_redemptions`.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiscountCodesProjection;

impl Subscriber for DiscountCodesProjection {
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        const TYPES: &[&str] = &[<DiscountCode as cqrs_es::Aggregate>::TYPE];
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
                if event.aggregate_type != <DiscountCode as cqrs_es::Aggregate>::TYPE {
                    continue;
                }
                let decoded: DiscountEvent = serde_json::from_value(event.payload.clone())
                    .map_err(|e| SubscriberError::decode(event, e))?;
                apply_one(tx, event, decoded).await?;
            }
            Ok(())
        })
    }

    fn reset<'a>(&'a self, tx: &'a mut PgConnection) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM discount_redemptions")
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM discount_codes")
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
    }
}

/// The terms as the columns store them.
struct TermColumns {
    percent_off_basis_points: Option<i32>,
    amount_off_micros: Option<i64>,
    amount_off_currency: Option<&'static str>,
    valid_from: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
    max_redemptions: Option<i64>,
    max_per_account: Option<i64>,
    plan_ids: Vec<Uuid>,
    billing_periods: Vec<String>,
    first_order_only: bool,
    active: bool,
}

impl TermColumns {
    fn of(terms: &DiscountTerms) -> Self {
        let (percent, amount) = match terms.value {
            DiscountValue::PercentOff { percent } => (Some(percent.basis_points()), None),
            DiscountValue::AmountOff { amount } => (None, Some(amount)),
        };
        Self {
            // At most 10 000 basis points, so the conversion cannot fail.
            percent_off_basis_points: percent.map(|bp| i32::try_from(bp).unwrap_or(i32::MAX)),
            amount_off_micros: amount.map(|a| a.micros()),
            amount_off_currency: amount.map(|a| a.currency().code()),
            valid_from: terms.valid_from,
            valid_until: terms.valid_until,
            max_redemptions: terms.max_redemptions.map(i64::from),
            max_per_account: terms.max_per_account.map(i64::from),
            plan_ids: terms.plan_ids.iter().map(|p| p.as_uuid()).collect(),
            billing_periods: terms
                .billing_periods
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            first_order_only: terms.first_order_only,
            active: terms.active,
        }
    }
}

async fn apply_one(
    tx: &mut PgConnection,
    stored: &StoredEvent,
    event: DiscountEvent,
) -> Result<(), SubscriberError> {
    let code_id =
        Uuid::parse_str(&stored.aggregate_id).map_err(|e| SubscriberError::decode(stored, e))?;
    match event {
        DiscountEvent::DiscountCodeCreated {
            code,
            terms,
            created_at,
        } => {
            let t = TermColumns::of(&terms);
            sqlx::query(
                "INSERT INTO discount_codes (id, code, percent_off_basis_points, amount_off_micros, \
                 amount_off_currency, valid_from, valid_until, max_redemptions, max_per_account, \
                 plan_ids, billing_periods, first_order_only, active, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(code_id)
            .bind(code.as_str())
            .bind(t.percent_off_basis_points)
            .bind(t.amount_off_micros)
            .bind(t.amount_off_currency)
            .bind(t.valid_from)
            .bind(t.valid_until)
            .bind(t.max_redemptions)
            .bind(t.max_per_account)
            .bind(&t.plan_ids)
            .bind(&t.billing_periods)
            .bind(t.first_order_only)
            .bind(t.active)
            .bind(stored.sequence)
            .bind(created_at)
            .execute(&mut *tx)
            .await?;
            return Ok(());
        }
        DiscountEvent::DiscountCodeUpdated { terms, updated_at } => {
            let t = TermColumns::of(&terms);
            sqlx::query(
                "UPDATE discount_codes SET percent_off_basis_points = $2, amount_off_micros = $3, \
                 amount_off_currency = $4, valid_from = $5, valid_until = $6, max_redemptions = $7, \
                 max_per_account = $8, plan_ids = $9, billing_periods = $10, first_order_only = $11, \
                 active = $12, updated_at = $13 WHERE id = $1",
            )
            .bind(code_id)
            .bind(t.percent_off_basis_points)
            .bind(t.amount_off_micros)
            .bind(t.amount_off_currency)
            .bind(t.valid_from)
            .bind(t.valid_until)
            .bind(t.max_redemptions)
            .bind(t.max_per_account)
            .bind(&t.plan_ids)
            .bind(&t.billing_periods)
            .bind(t.first_order_only)
            .bind(t.active)
            .bind(updated_at)
            .execute(&mut *tx)
            .await?;
        }
        DiscountEvent::DiscountRedeemed {
            order_id,
            account_id,
            plan_id,
            billing_period,
            redeemed_at,
            ..
        } => {
            // An order whose redemption was released may redeem the code again: the row is
            // reused and counts as in use once more.
            sqlx::query(
                "INSERT INTO discount_redemptions (code_id, order_id, account_id, plan_id, \
                 billing_period, redeemed_at, released_at) VALUES ($1, $2, $3, $4, $5, $6, NULL) \
                 ON CONFLICT (code_id, order_id) DO UPDATE SET account_id = EXCLUDED.account_id, \
                 plan_id = EXCLUDED.plan_id, billing_period = EXCLUDED.billing_period, \
                 redeemed_at = EXCLUDED.redeemed_at, released_at = NULL",
            )
            .bind(code_id)
            .bind(order_id.as_uuid())
            .bind(account_id.as_uuid())
            .bind(plan_id.map(|p| p.as_uuid()))
            .bind(billing_period.as_str())
            .bind(redeemed_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE discount_codes SET redemptions_in_use = redemptions_in_use + 1 WHERE id = $1",
            )
            .bind(code_id)
            .execute(&mut *tx)
            .await?;
        }
        DiscountEvent::RedemptionReleased {
            order_id,
            released_at,
            ..
        } => {
            sqlx::query(
                "UPDATE discount_redemptions SET released_at = $3 \
                 WHERE code_id = $1 AND order_id = $2",
            )
            .bind(code_id)
            .bind(order_id.as_uuid())
            .bind(released_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE discount_codes SET redemptions_in_use = redemptions_in_use - 1, \
                 redemptions_released = redemptions_released + 1 WHERE id = $1",
            )
            .bind(code_id)
            .execute(&mut *tx)
            .await?;
        }
    }
    sqlx::query("UPDATE discount_codes SET version = $2 WHERE id = $1")
        .bind(code_id)
        .bind(stored.sequence)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// One discount code as the admin routes show it. `percent_off` is a decimal string (`"15"`,
/// `"12.5"`), `amount_off` a money object; exactly one of them is set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiscountCodeView {
    pub id: Uuid,
    pub code: String,
    pub percent_off: Option<String>,
    pub amount_off: Option<Money>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub max_redemptions: Option<i64>,
    pub max_per_account: Option<i64>,
    /// Empty: any plan, custom configurations included.
    pub plan_ids: Vec<Uuid>,
    /// Empty: any billing period.
    pub billing_periods: Vec<String>,
    pub first_order_only: bool,
    pub active: bool,
    /// Redeemed by orders and not released: what counts toward the limits.
    pub redemptions_in_use: i64,
    /// Given back by cancelled or expired orders.
    pub redemptions_released: i64,
    /// `max_redemptions − redemptions_in_use`; `None` when unlimited.
    pub redemptions_left: Option<i64>,
    /// Events applied so far.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    /// When the terms last changed.
    pub updated_at: DateTime<Utc>,
}

/// Filters of the code list; every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct DiscountCodeFilter {
    pub active: Option<bool>,
    /// Only codes starting with this (already upper case).
    pub code_prefix: Option<String>,
    /// Only codes created before this one, by `(created_at, id)`.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

const COLUMNS: &str =
    "id, code, percent_off_basis_points, amount_off_micros, amount_off_currency, \
     valid_from, valid_until, max_redemptions, max_per_account, plan_ids, billing_periods, \
     first_order_only, active, redemptions_in_use, redemptions_released, version, created_at, \
     updated_at";

fn decode_error(err: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(err))
}

fn view_of(row: &PgRow) -> Result<DiscountCodeView, sqlx::Error> {
    let basis_points: Option<i32> = row.try_get("percent_off_basis_points")?;
    let percent_off = basis_points
        .map(|bp| {
            let bp = u32::try_from(bp).map_err(decode_error)?;
            stratus_domain::pricing::Percent::from_basis_points(bp)
                .map(|p| p.to_decimal_string())
                .map_err(decode_error)
        })
        .transpose()?;
    let micros: Option<i64> = row.try_get("amount_off_micros")?;
    let currency: Option<String> = row.try_get("amount_off_currency")?;
    let amount_off = match (micros, currency) {
        (Some(micros), Some(code)) => Some(Money::from_micros(
            micros,
            Currency::parse(&code).map_err(decode_error)?,
        )),
        _ => None,
    };
    let max_redemptions: Option<i64> = row.try_get("max_redemptions")?;
    let in_use: i64 = row.try_get("redemptions_in_use")?;
    Ok(DiscountCodeView {
        id: row.try_get("id")?,
        code: row.try_get("code")?,
        percent_off,
        amount_off,
        valid_from: row.try_get("valid_from")?,
        valid_until: row.try_get("valid_until")?,
        max_redemptions,
        max_per_account: row.try_get("max_per_account")?,
        plan_ids: row.try_get("plan_ids")?,
        billing_periods: row.try_get("billing_periods")?,
        first_order_only: row.try_get("first_order_only")?,
        active: row.try_get("active")?,
        redemptions_in_use: in_use,
        redemptions_released: row.try_get("redemptions_released")?,
        redemptions_left: max_redemptions.map(|max| max.saturating_sub(in_use).max(0)),
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// One code by id.
pub async fn get_discount_code(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<DiscountCodeView>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM discount_codes WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(view_of).transpose()
}

/// Codes, newest first.
pub async fn list_discount_codes(
    pool: &PgPool,
    filter: &DiscountCodeFilter,
) -> Result<Vec<DiscountCodeView>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM discount_codes \
         WHERE ($1::boolean IS NULL OR active = $1) \
           AND ($2::text IS NULL OR starts_with(code, $2)) \
           AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4)) \
         ORDER BY created_at DESC, id DESC LIMIT $5"
    ))
    .bind(filter.active)
    .bind(&filter.code_prefix)
    .bind(filter.before.map(|b| b.0))
    .bind(filter.before.map(|b| b.1))
    .bind(filter.limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(view_of).collect()
}
