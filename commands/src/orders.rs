//! Ordering: pricing an order (the quote), placing it with its discount code and invoice, paying
//! it from the wallet, cancelling it, and expiring it when unpaid.
//!
//! [`Orders::price`] is the one path from an order's input to its [`Quote`]: `POST /catalog/quote`
//! calls it with a dry-run discount check, `POST /orders` with the redemption itself, and the
//! invoice holds the quote it returned. A quote therefore always equals the invoice of the order
//! placed with the same input (the property test in `tests/tests/system/orders.rs` checks it).
//!
//! Placing an order takes three aggregates, in this order: the discount code redeems (keyed by the
//! order id), the invoice is drafted and issued, the order is placed. When a later step fails, the
//! earlier ones are compensated (the redemption released, the invoice voided). Paying debits the
//! wallet with the reference `order:<id>`, so a retried payment never debits twice; if the order
//! was cancelled or expired meanwhile, the debit is refunded at once.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use stratus_domain::discount::{id_of, CodeText, DiscountError, RedemptionRequest};
use stratus_domain::invoice::{BillTo, InvoiceError};
use stratus_domain::order::{
    CancelledBy, Hostname, Order, OrderCommand, OrderDiscount, OrderError, OrderItem, OrderStatus,
    Placement, SshPublicKey,
};
use stratus_domain::pricing::{
    self, AppliedDiscount, BillingPeriod, Offer, Percent, PricingError, PricingRequest, Quote,
    Resources, TaxRate,
};
use stratus_domain::wallet::{DebitReason, RefundReason, WalletError};
use stratus_domain::{
    AccountId, Country, Currency, DatacenterId, ImageId, InvoiceId, LedgerReference, OrderId,
    PlanId, Reason,
};
use stratus_projections::catalog;
use stratus_projections::FeedPosition;
use uuid::Uuid;

use crate::aggregate_store::{AggregateStore, CommandError};
use crate::discount_codes::DiscountCodes;
use crate::invoices::Invoices;
use crate::metadata::CommandMetadata;
use crate::wallets::Wallets;

/// The store of orders.
pub type OrderStore = AggregateStore<Order>;

/// Orders expired per sweep; the next sweep takes the rest.
pub const EXPIRY_BATCH: i64 = 100;

/// Namespace of the command ids of the expiry sweep (UUIDv5 of the order id).
const EXPIRY_NAMESPACE: Uuid = Uuid::from_u128(0x2d6a_90f1_4c3b_4e57_a812_7f0e_c35b_19d4);

/// How VAT is chosen: the rate of the customer's country, or of the provider's home country when
/// the customer's is unknown. A country without a configured rate pays no VAT (an export).
#[derive(Debug, Clone, Default)]
pub struct TaxPolicy {
    pub home_country: Option<Country>,
    pub rates: BTreeMap<Country, Percent>,
}

impl TaxPolicy {
    /// The rate that applies to a customer in `country` (or unknown).
    pub fn rate_for(&self, country: Option<&Country>) -> TaxRate {
        let Some(country) = country.or(self.home_country.as_ref()) else {
            return TaxRate::none();
        };
        TaxRate {
            country: Some(country.clone()),
            rate: self.rates.get(country).copied().unwrap_or(Percent::ZERO),
        }
    }
}

/// The settings of ordering.
#[derive(Debug, Clone)]
pub struct OrderPolicy {
    /// How long an unpaid order can be paid before it expires.
    pub payment_window: Duration,
    pub tax: TaxPolicy,
    /// The settlement currency: the catalog's prices must be in it.
    pub currency: Currency,
}

/// What is ordered, parsed from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemInput {
    Plan(PlanId),
    Custom(Resources),
}

/// The part of an order that decides its price: the same for a quote and an order.
#[derive(Debug, Clone)]
pub struct OrderInput {
    pub item: ItemInput,
    pub datacenter_id: DatacenterId,
    pub image_id: ImageId,
    pub billing_period: BillingPeriod,
    pub discount_code: Option<CodeText>,
}

/// Who is ordering, as far as pricing cares.
#[derive(Debug, Clone)]
pub struct Customer {
    pub account_id: AccountId,
    /// The country whose VAT applies (the verified identity's), if known.
    pub country: Option<Country>,
    /// No order of this account has been paid yet.
    pub first_order: bool,
    /// Who the invoice is made out to.
    pub bill_to: BillTo,
}

/// Why an order's input cannot be priced: one variant per catalog rule, each naming the request
/// field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferProblem {
    #[error("no such plan")]
    PlanNotFound,
    #[error("this plan is retired and can no longer be ordered")]
    PlanRetired,
    #[error("this plan is not sold in that datacenter")]
    PlanNotInDatacenter,
    #[error("no such datacenter")]
    DatacenterNotFound,
    #[error("this datacenter takes no new orders")]
    DatacenterUnavailable,
    #[error("this datacenter does not sell custom configurations")]
    CustomNotSold,
    #[error("no such image")]
    ImageNotFound,
    #[error("this image is not available")]
    ImageUnavailable,
    #[error("this image needs a disk of at least {0} GiB")]
    ImageNeedsLargerDisk(u32),
    #[error("the price is not in the settlement currency")]
    CurrencyMismatch,
}

impl OfferProblem {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PlanNotFound => "plan_not_found",
            Self::PlanRetired => "plan_retired",
            Self::PlanNotInDatacenter => "plan_not_in_datacenter",
            Self::DatacenterNotFound => "datacenter_not_found",
            Self::DatacenterUnavailable => "datacenter_unavailable",
            Self::CustomNotSold => "custom_not_sold",
            Self::ImageNotFound => "image_not_found",
            Self::ImageUnavailable => "image_unavailable",
            Self::ImageNeedsLargerDisk(_) => "image_needs_larger_disk",
            Self::CurrencyMismatch => "currency_mismatch",
        }
    }

    /// The request field the problem is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::PlanNotFound | Self::PlanRetired | Self::PlanNotInDatacenter => "plan_id",
            Self::DatacenterNotFound | Self::DatacenterUnavailable => "datacenter_id",
            Self::CustomNotSold => "custom",
            Self::ImageNotFound | Self::ImageUnavailable | Self::ImageNeedsLargerDisk(_) => {
                "image_id"
            }
            Self::CurrencyMismatch => "plan_id",
        }
    }
}

/// Why ordering failed. Refusals carry their rule; conflicts and infrastructure stay apart until
/// the edge (STYLE.md 7).
#[derive(Debug, thiserror::Error)]
pub enum OrderingError {
    #[error("{0}")]
    Offer(OfferProblem),
    #[error("{0}")]
    Pricing(PricingError),
    #[error("{0}")]
    Discount(DiscountError),
    #[error("{0}")]
    Order(OrderError),
    #[error("{0}")]
    Wallet(WalletError),
    #[error("{0}")]
    Invoice(InvoiceError),
    #[error("concurrent modification; retries exhausted")]
    Conflict,
    #[error("infrastructure failure: {0}")]
    Infrastructure(String),
}

impl OrderingError {
    fn infra(error: impl std::fmt::Display) -> Self {
        Self::Infrastructure(error.to_string())
    }
}

/// Maps a command failure of any aggregate into an [`OrderingError`].
fn from_command<E: std::error::Error>(
    refused: impl FnOnce(E) -> OrderingError,
) -> impl FnOnce(CommandError<E>) -> OrderingError {
    move |error| match error {
        CommandError::Refused(e) => refused(e),
        CommandError::Conflict => OrderingError::Conflict,
        CommandError::Infrastructure(e) => OrderingError::infra(e),
    }
}

/// An order's input priced: the quote and what the order records about the item and discount.
#[derive(Debug, Clone)]
pub struct Priced {
    pub quote: Quote,
    pub item: OrderItem,
    pub discount: Option<OrderDiscount>,
}

/// How [`Orders::price`] treats a discount code.
enum DiscountStep<'a> {
    /// Ask the code's own rules what they would decide, without redeeming (a quote).
    DryRun,
    /// Redeem it for this order (placing).
    Redeem {
        order_id: OrderId,
        metadata: &'a CommandMetadata,
    },
}

/// A placed order.
#[derive(Debug, Clone)]
pub struct Placed {
    pub order_id: OrderId,
    pub invoice_id: InvoiceId,
    pub quote: Quote,
    pub position: Option<FeedPosition>,
}

/// The ordering use cases.
#[derive(Clone)]
pub struct Orders {
    store: std::sync::Arc<OrderStore>,
    pool: PgPool,
    discounts: DiscountCodes,
    invoices: Invoices,
    wallets: Wallets,
    policy: OrderPolicy,
}

impl Orders {
    pub fn new(
        pool: PgPool,
        discounts: DiscountCodes,
        invoices: Invoices,
        wallets: Wallets,
        policy: OrderPolicy,
    ) -> Self {
        Self {
            store: std::sync::Arc::new(AggregateStore::new(pool.clone(), ())),
            pool,
            discounts,
            invoices,
            wallets,
            policy,
        }
    }

    /// The underlying store (for tools and tests).
    pub fn store(&self) -> &OrderStore {
        &self.store
    }

    /// The tax rate a customer in `country` (or of unknown country) pays.
    pub fn tax_for(&self, country: Option<&Country>) -> TaxRate {
        self.policy.tax.rate_for(country)
    }

    /// Prices `input` for `customer` (anonymous: the provider's home country, no per-account
    /// limits known) without redeeming anything: `POST /catalog/quote`.
    pub async fn quote(
        &self,
        input: &OrderInput,
        customer: Option<&Customer>,
        at: DateTime<Utc>,
    ) -> Result<Priced, OrderingError> {
        self.price(input, customer, DiscountStep::DryRun, at).await
    }

    /// The one pricing path of quotes and orders.
    async fn price(
        &self,
        input: &OrderInput,
        customer: Option<&Customer>,
        discount_step: DiscountStep<'_>,
        at: DateTime<Utc>,
    ) -> Result<Priced, OrderingError> {
        let offer_error = |problem| Err(OrderingError::Offer(problem));
        let datacenter = match catalog::get_datacenter(&self.pool, input.datacenter_id)
            .await
            .map_err(OrderingError::infra)?
        {
            None => return offer_error(OfferProblem::DatacenterNotFound),
            Some(d) if !d.available => return offer_error(OfferProblem::DatacenterUnavailable),
            Some(d) => d,
        };
        let plan = match &input.item {
            ItemInput::Custom(_) => None,
            ItemInput::Plan(plan_id) => {
                match catalog::get_plan(&self.pool, *plan_id)
                    .await
                    .map_err(OrderingError::infra)?
                {
                    None => return offer_error(OfferProblem::PlanNotFound),
                    Some(p) if !p.is_active() => return offer_error(OfferProblem::PlanRetired),
                    Some(p) if !p.datacenters.contains(&input.datacenter_id) => {
                        return offer_error(OfferProblem::PlanNotInDatacenter)
                    }
                    Some(p) => Some(p),
                }
            }
        };
        let (offer, item) = match (&input.item, &plan) {
            (ItemInput::Plan(plan_id), Some(plan)) => (
                Offer::Plan {
                    name: plan.name.as_str(),
                    prices: &plan.prices,
                },
                OrderItem::Plan {
                    plan_id: *plan_id,
                    resources: plan.resources,
                },
            ),
            (ItemInput::Custom(resources), _) => {
                let Some(pricing) = datacenter.custom_pricing.as_ref() else {
                    return offer_error(OfferProblem::CustomNotSold);
                };
                (
                    Offer::Custom {
                        resources: *resources,
                        pricing,
                    },
                    OrderItem::Custom {
                        resources: *resources,
                    },
                )
            }
            (ItemInput::Plan(_), None) => return offer_error(OfferProblem::PlanNotFound),
        };
        let currency = match offer {
            Offer::Plan { prices, .. } => prices.currency(),
            Offer::Custom { pricing, .. } => pricing.currency(),
        };
        if currency != self.policy.currency {
            return offer_error(OfferProblem::CurrencyMismatch);
        }
        match catalog::get_image(&self.pool, input.image_id)
            .await
            .map_err(OrderingError::infra)?
        {
            None => return offer_error(OfferProblem::ImageNotFound),
            Some(image) if !image.available => return offer_error(OfferProblem::ImageUnavailable),
            Some(image) if image.min_disk_gib > item.resources().disk_gib => {
                return offer_error(OfferProblem::ImageNeedsLargerDisk(image.min_disk_gib))
            }
            Some(_) => {}
        }
        // Bounds first, so that a configuration outside them is refused before a code is redeemed.
        if let (ItemInput::Custom(resources), Offer::Custom { pricing, .. }) = (&input.item, offer)
        {
            let problems = pricing.problems(resources);
            if !problems.is_empty() {
                return Err(OrderingError::Pricing(PricingError::OutOfBounds(problems)));
            }
        }
        let (applied, discount) = match &input.discount_code {
            None => (None, None),
            Some(code) => {
                let request = RedemptionRequest {
                    account_id: customer
                        .map(|c| c.account_id)
                        .unwrap_or_else(|| AccountId::from_uuid(Uuid::nil())),
                    plan_id: item.plan_id(),
                    billing_period: input.billing_period,
                    first_order: customer.is_none_or(|c| c.first_order),
                    at,
                };
                let (code_id, value) = match discount_step {
                    DiscountStep::DryRun => self.discounts.check(code, &request).await,
                    DiscountStep::Redeem { order_id, metadata } => {
                        self.discounts
                            .redeem(code, order_id, &request, metadata)
                            .await
                    }
                }
                .map_err(from_command(OrderingError::Discount))?;
                (
                    Some(AppliedDiscount {
                        code: code.as_str().to_owned(),
                        value,
                    }),
                    Some(OrderDiscount {
                        code_id,
                        code: code.as_str().to_owned(),
                    }),
                )
            }
        };
        let quote = pricing::quote(&PricingRequest {
            offer,
            billing_period: input.billing_period,
            discount: applied,
            tax: self.tax_for(customer.and_then(|c| c.country.as_ref())),
        })
        .map_err(OrderingError::Pricing)?;
        Ok(Priced {
            quote,
            item,
            discount,
        })
    }

    /// Places an order: redeems its discount code, issues its invoice, records it
    /// `pending_payment` with a payment deadline.
    pub async fn place(
        &self,
        customer: &Customer,
        input: &OrderInput,
        hostname: Hostname,
        ssh_keys: Vec<SshPublicKey>,
        metadata: &CommandMetadata,
    ) -> Result<Placed, OrderingError> {
        let now = Utc::now();
        let order_id = OrderId::from_uuid(Uuid::now_v7());
        let invoice_id = InvoiceId::from_uuid(Uuid::now_v7());
        let priced = match self
            .price(
                input,
                Some(customer),
                DiscountStep::Redeem { order_id, metadata },
                now,
            )
            .await
        {
            Ok(priced) => priced,
            Err(error) => {
                // Only the final pricing step comes after the redemption: give the place back.
                if let (OrderingError::Pricing(_), Some(code)) = (&error, &input.discount_code) {
                    let discount = Some(OrderDiscount {
                        code_id: id_of(code),
                        code: code.as_str().to_owned(),
                    });
                    self.release_discount(&discount, order_id, metadata).await;
                }
                return Err(error);
            }
        };
        if let Err(error) = self
            .invoices
            .create_and_issue(
                invoice_id,
                customer.account_id,
                Some(order_id),
                customer.bill_to.clone(),
                priced.quote.clone(),
                metadata,
            )
            .await
        {
            self.release_discount(&priced.discount, order_id, metadata)
                .await;
            return Err(from_command(OrderingError::Invoice)(error));
        }
        let pay_by = chrono::Duration::from_std(self.policy.payment_window)
            .ok()
            .and_then(|window| now.checked_add_signed(window))
            .ok_or_else(|| OrderingError::infra("the payment window is out of range"))?;
        let placement = Placement {
            order_id,
            account_id: customer.account_id,
            item: priced.item,
            datacenter_id: input.datacenter_id,
            image_id: input.image_id,
            hostname,
            ssh_keys,
            billing_period: input.billing_period,
            quote: priced.quote.clone(),
            discount: priced.discount.clone(),
            invoice_id,
            placed_at: now,
            pay_by,
        };
        let placed = self
            .store
            .execute(
                &order_id.to_string(),
                OrderCommand::Place(Box::new(placement)),
                metadata,
            )
            .await;
        match placed {
            Ok(appended) => Ok(Placed {
                order_id,
                invoice_id,
                quote: priced.quote,
                position: appended.position,
            }),
            Err(error) => {
                self.release_discount(&priced.discount, order_id, metadata)
                    .await;
                let reason =
                    Reason::parse("the order could not be placed").map_err(OrderingError::infra)?;
                if let Err(void_error) = self.invoices.void(invoice_id, reason, metadata).await {
                    tracing::warn!(%invoice_id, error = %void_error, "voiding the invoice of an order that failed");
                }
                Err(from_command(OrderingError::Order)(error))
            }
        }
    }

    /// Gives a redemption back after a failed placement; logged, not raised: the order already
    /// failed, and a leaked redemption only lowers a code's remaining count.
    async fn release_discount(
        &self,
        discount: &Option<OrderDiscount>,
        order_id: OrderId,
        metadata: &CommandMetadata,
    ) {
        if let Some(discount) = discount {
            if let Err(error) = self
                .discounts
                .release(discount.code_id, order_id, metadata)
                .await
            {
                tracing::warn!(%order_id, error = %error, "releasing the discount of an order that failed");
            }
        }
    }

    /// The order `order_id` if it belongs to `account_id` (`None` otherwise: someone else's order
    /// is not found).
    async fn own_order(
        &self,
        account_id: Option<AccountId>,
        order_id: OrderId,
    ) -> Result<Order, OrderingError> {
        let order = self
            .store
            .load(&order_id.to_string())
            .await
            .map_err(from_command(OrderingError::Order))?;
        match (order.account_id(), account_id) {
            (None, _) => Err(OrderingError::Order(OrderError::OrderNotFound)),
            (Some(owner), Some(caller)) if owner != caller => {
                Err(OrderingError::Order(OrderError::OrderNotFound))
            }
            _ => Ok(order),
        }
    }

    /// Pays a pending order of `account_id` from its wallet. The debit's reference is
    /// `order:<id>`, so retrying never debits twice; paying a paid order again answers as before.
    pub async fn pay_from_wallet(
        &self,
        account_id: AccountId,
        order_id: OrderId,
        metadata: &CommandMetadata,
    ) -> Result<Option<FeedPosition>, OrderingError> {
        let order = self.own_order(Some(account_id), order_id).await?;
        let now = Utc::now();
        let reference = order_reference(order_id)?;
        match order.status() {
            Some(OrderStatus::PendingPayment) => {}
            Some(OrderStatus::Paid) => return Ok(None),
            Some(status) => {
                return Err(OrderingError::Order(OrderError::NotPayable(
                    status.as_str(),
                )))
            }
            None => return Err(OrderingError::Order(OrderError::OrderNotFound)),
        }
        if order.pay_by().is_some_and(|deadline| now > deadline) {
            return Err(OrderingError::Order(OrderError::PaymentWindowClosed));
        }
        let total = order
            .total()
            .ok_or(OrderingError::Order(OrderError::OrderNotFound))?;
        let debited = total.is_positive();
        if debited {
            self.wallets
                .debit(
                    account_id,
                    reference.clone(),
                    total,
                    DebitReason::Order,
                    metadata,
                )
                .await
                .map_err(from_command(OrderingError::Wallet))?;
        }
        let paid = self
            .store
            .execute(
                &order_id.to_string(),
                OrderCommand::Pay {
                    payment_reference: reference.clone(),
                    amount: total,
                    paid_at: now,
                },
                metadata,
            )
            .await;
        match paid {
            Ok(appended) => Ok(appended.position),
            Err(error) => {
                if debited {
                    // Cancelled or expired between the check and the debit: give the money back.
                    let refund = LedgerReference::parse(&format!("refund:{reference}"))
                        .map_err(OrderingError::infra)?;
                    self.wallets
                        .refund(
                            account_id,
                            refund,
                            Some(reference),
                            total,
                            RefundReason::Order,
                            metadata,
                        )
                        .await
                        .map_err(from_command(OrderingError::Wallet))?;
                }
                Err(from_command(OrderingError::Order)(error))
            }
        }
    }

    /// Cancels a pending order: by its customer (`account_id` set) or by staff (`None`).
    pub async fn cancel(
        &self,
        account_id: Option<AccountId>,
        order_id: OrderId,
        metadata: &CommandMetadata,
    ) -> Result<Option<FeedPosition>, OrderingError> {
        self.own_order(account_id, order_id).await?;
        let by = if account_id.is_some() {
            CancelledBy::Customer
        } else {
            CancelledBy::Staff
        };
        self.store
            .execute(
                &order_id.to_string(),
                OrderCommand::Cancel { by, at: Utc::now() },
                metadata,
            )
            .await
            .map(|appended| appended.position)
            .map_err(from_command(OrderingError::Order))
    }

    /// Expires the unpaid orders whose deadline passed before `now` (one batch); returns how
    /// many expired. An order paid meanwhile is left alone.
    pub async fn expire_due(&self, now: DateTime<Utc>) -> Result<usize, OrderingError> {
        let due = stratus_projections::orders::due_for_expiry(&self.pool, now, EXPIRY_BATCH)
            .await
            .map_err(OrderingError::infra)?;
        let mut expired = 0;
        for order_id in due {
            let command_id = Uuid::new_v5(&EXPIRY_NAMESPACE, order_id.as_uuid().as_bytes());
            let metadata = CommandMetadata::system(command_id, "order_expiry");
            match self
                .store
                .execute(
                    &order_id.to_string(),
                    OrderCommand::Expire { at: now },
                    &metadata,
                )
                .await
            {
                Ok(appended) if !appended.events.is_empty() => expired += 1,
                Ok(_) | Err(CommandError::Refused(_)) => {}
                Err(error) => return Err(from_command(OrderingError::Order)(error)),
            }
        }
        Ok(expired)
    }
}

/// The wallet reference of an order's payment.
pub fn order_reference(order_id: OrderId) -> Result<LedgerReference, OrderingError> {
    LedgerReference::parse(&format!("order:{order_id}")).map_err(OrderingError::infra)
}

/// Runs [`Orders::expire_due`] every `every` until `stop` turns true: unpaid orders expire at most
/// one interval after their deadline. A failed sweep is logged and retried at the next tick.
pub fn start_expiry_sweep(
    orders: Orders,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
            match orders.expire_due(Utc::now()).await {
                Ok(0) => {}
                Ok(expired) => tracing::info!(expired, "expired unpaid orders"),
                Err(error) => tracing::warn!(%error, "the order expiry sweep failed"),
            }
        }
    })
}
