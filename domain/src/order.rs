//! The `Order` aggregate: one customer's order of one VM, from placement to payment (or
//! cancellation or expiry).
//!
//! An order is placed already priced: the command carries the [`Quote`] that
//! [`crate::pricing::quote`] produced from the catalog, the redeemed discount code and the tax
//! rate, and the id of the invoice issued for it. The aggregate does not look anything up; it
//! keeps the order's own rules:
//!
//! - An order is placed once, `pending_payment`, with a payment deadline after its placement.
//! - Payment must be for exactly the invoice total, before the deadline, while the order is still
//!   pending. Paying again with the same reference is a no-op (a retried request), with another
//!   reference it is refused: one order is paid once.
//! - Only a pending order can be cancelled (by its customer or by staff) or expire (once its
//!   deadline has passed). Cancelling or expiring an order that is already cancelled or expired
//!   is a no-op.
//!
//! The paid order is handed to VM provisioning by its [`OrderEvent::OrderPaid`] event (a later
//! issue); until then a paid order stays `paid`.

mod hostname;
mod ssh_key;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

pub use hostname::{Hostname, HostnameProblem, HOSTNAME_LABEL_MAX_CHARS, HOSTNAME_MAX_CHARS};
pub use ssh_key::{
    SshKeyProblem, SshPublicKey, SSH_KEY_COMMENT_MAX_CHARS, SSH_KEY_MAX_BYTES, SSH_KEY_TYPES,
};

use crate::ids::{AccountId, DatacenterId, DiscountCodeId, ImageId, InvoiceId, OrderId, PlanId};
use crate::pricing::{BillingPeriod, Quote, Resources};
use crate::values::{LedgerReference, Money};

#[cfg(test)]
mod tests;

/// Version of every order event's payload.
const EVENT_VERSION: &str = "1";

/// Most SSH keys one order may install.
pub const MAX_SSH_KEYS: usize = 10;

/// What an order buys: a plan of the catalog, or a custom configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OrderItem {
    /// A plan, with the size it had when ordered (a later change to the plan does not change
    /// what this order bought).
    Plan {
        plan_id: PlanId,
        resources: Resources,
    },
    /// A custom configuration.
    Custom { resources: Resources },
}

impl OrderItem {
    /// The size of the VM ordered.
    pub fn resources(&self) -> Resources {
        match self {
            Self::Plan { resources, .. } | Self::Custom { resources } => *resources,
        }
    }

    /// The plan ordered, if any.
    pub fn plan_id(&self) -> Option<PlanId> {
        match self {
            Self::Plan { plan_id, .. } => Some(*plan_id),
            Self::Custom { .. } => None,
        }
    }
}

/// The discount code redeemed for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDiscount {
    pub code_id: DiscountCodeId,
    pub code: String,
}

/// Who cancelled an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelledBy {
    Customer,
    Staff,
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    Cancelled,
}

impl OrderStatus {
    /// The wire name (API.md: `pending_payment`, `paid`, `cancelled`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::PendingPayment => "pending_payment",
            Self::Paid => "paid",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Everything an order is placed with; carried whole by [`OrderEvent::OrderPlaced`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub order_id: OrderId,
    pub account_id: AccountId,
    pub item: OrderItem,
    pub datacenter_id: DatacenterId,
    pub image_id: ImageId,
    pub hostname: Hostname,
    pub ssh_keys: Vec<SshPublicKey>,
    pub billing_period: BillingPeriod,
    /// The priced order, exactly as on its invoice.
    pub quote: Quote,
    pub discount: Option<OrderDiscount>,
    pub invoice_id: InvoiceId,
    pub placed_at: DateTime<Utc>,
    /// After this instant an unpaid order can no longer be paid and expires.
    pub pay_by: DateTime<Utc>,
}

/// What can be asked of an order.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderCommand {
    Place(Box<Placement>),
    Pay {
        /// The wallet movement (or other payment) that paid the invoice total.
        payment_reference: LedgerReference,
        amount: Money,
        paid_at: DateTime<Utc>,
    },
    Cancel {
        by: CancelledBy,
        at: DateTime<Utc>,
    },
    Expire {
        at: DateTime<Utc>,
    },
}

/// What happened to an order. A stored format: names and fields never change meaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderEvent {
    OrderPlaced(Box<Placement>),
    OrderPaid {
        payment_reference: LedgerReference,
        amount: Money,
        paid_at: DateTime<Utc>,
    },
    OrderCancelled {
        by: CancelledBy,
        cancelled_at: DateTime<Utc>,
    },
    OrderExpired {
        expired_at: DateTime<Utc>,
    },
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        let name = match self {
            Self::OrderPlaced(_) => "OrderPlaced",
            Self::OrderPaid { .. } => "OrderPaid",
            Self::OrderCancelled { .. } => "OrderCancelled",
            Self::OrderExpired { .. } => "OrderExpired",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        EVENT_VERSION.to_owned()
    }
}

/// Why an order command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("this order already exists")]
    OrderAlreadyPlaced,
    #[error("no such order")]
    OrderNotFound,
    #[error("the payment deadline must be after the placement")]
    InvalidDeadline,
    #[error("at most {MAX_SSH_KEYS} SSH keys per order")]
    TooManySshKeys,
    #[error("the quote is not in one currency or its total is negative")]
    InvalidQuote,
    #[error("only an order that is pending payment can be paid; this one is {0}")]
    NotPayable(&'static str),
    #[error("the payment deadline of this order has passed")]
    PaymentWindowClosed,
    #[error("the payment must be exactly the invoice total")]
    PaymentAmountMismatch,
    #[error("only an order that is pending payment can be cancelled; this one is {0}")]
    NotCancellable(&'static str),
    #[error("the order's payment deadline has not passed yet")]
    NotDueForExpiry,
}

impl OrderError {
    /// Stable machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::OrderAlreadyPlaced => "order_already_placed",
            Self::OrderNotFound => "order_not_found",
            Self::InvalidDeadline => "invalid_deadline",
            Self::TooManySshKeys => "too_many_ssh_keys",
            Self::InvalidQuote => "invalid_quote",
            Self::NotPayable(_) => "order_not_payable",
            Self::PaymentWindowClosed => "order_expired",
            Self::PaymentAmountMismatch => "payment_amount_mismatch",
            Self::NotCancellable(_) => "order_not_cancellable",
            Self::NotDueForExpiry => "order_not_due",
        }
    }
}

/// The state an order needs to decide; `None` until placed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    placed: Option<PlacedOrder>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PlacedOrder {
    account_id: AccountId,
    status: OrderStatus,
    total: Money,
    invoice_id: InvoiceId,
    discount: Option<OrderDiscount>,
    pay_by: DateTime<Utc>,
    payment_reference: Option<LedgerReference>,
}

impl Order {
    /// The account that placed the order.
    pub fn account_id(&self) -> Option<AccountId> {
        self.placed.as_ref().map(|o| o.account_id)
    }

    /// Where the order stands.
    pub fn status(&self) -> Option<OrderStatus> {
        self.placed.as_ref().map(|o| o.status)
    }

    /// What the customer pays: the invoice total.
    pub fn total(&self) -> Option<Money> {
        self.placed.as_ref().map(|o| o.total)
    }

    /// The invoice issued for the order.
    pub fn invoice_id(&self) -> Option<InvoiceId> {
        self.placed.as_ref().map(|o| o.invoice_id)
    }

    /// The discount code redeemed for the order.
    pub fn discount(&self) -> Option<&OrderDiscount> {
        self.placed.as_ref().and_then(|o| o.discount.as_ref())
    }

    /// The payment deadline.
    pub fn pay_by(&self) -> Option<DateTime<Utc>> {
        self.placed.as_ref().map(|o| o.pay_by)
    }

    fn decide(&self, command: OrderCommand) -> Result<Option<OrderEvent>, OrderError> {
        let (order, command) = match (&self.placed, command) {
            (None, OrderCommand::Place(placement)) => return place(placement).map(Some),
            (None, _) => return Err(OrderError::OrderNotFound),
            (Some(order), command) => (order, command),
        };
        match command {
            OrderCommand::Place(_) => Err(OrderError::OrderAlreadyPlaced),
            OrderCommand::Pay {
                payment_reference,
                amount,
                paid_at,
            } => {
                if order.status == OrderStatus::Paid
                    && order.payment_reference.as_ref() == Some(&payment_reference)
                {
                    return Ok(None);
                }
                if order.status != OrderStatus::PendingPayment {
                    return Err(OrderError::NotPayable(order.status.as_str()));
                }
                if paid_at > order.pay_by {
                    return Err(OrderError::PaymentWindowClosed);
                }
                if amount != order.total {
                    return Err(OrderError::PaymentAmountMismatch);
                }
                Ok(Some(OrderEvent::OrderPaid {
                    payment_reference,
                    amount,
                    paid_at,
                }))
            }
            OrderCommand::Cancel { by, at } => match order.status {
                OrderStatus::Cancelled => Ok(None),
                OrderStatus::Paid => Err(OrderError::NotCancellable(order.status.as_str())),
                OrderStatus::PendingPayment => Ok(Some(OrderEvent::OrderCancelled {
                    by,
                    cancelled_at: at,
                })),
            },
            OrderCommand::Expire { at } => match order.status {
                OrderStatus::Cancelled => Ok(None),
                OrderStatus::Paid => Err(OrderError::NotCancellable(order.status.as_str())),
                OrderStatus::PendingPayment if at <= order.pay_by => {
                    Err(OrderError::NotDueForExpiry)
                }
                OrderStatus::PendingPayment => {
                    Ok(Some(OrderEvent::OrderExpired { expired_at: at }))
                }
            },
        }
    }
}

fn place(placement: Box<Placement>) -> Result<OrderEvent, OrderError> {
    if placement.pay_by <= placement.placed_at {
        return Err(OrderError::InvalidDeadline);
    }
    if placement.ssh_keys.len() > MAX_SSH_KEYS {
        return Err(OrderError::TooManySshKeys);
    }
    let quote = &placement.quote;
    if quote.total.currency() != quote.currency || quote.total.is_negative() {
        return Err(OrderError::InvalidQuote);
    }
    Ok(OrderEvent::OrderPlaced(placement))
}

impl Aggregate for Order {
    const TYPE: &'static str = "order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let Some(event) = self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            OrderEvent::OrderPlaced(placement) => {
                self.placed = Some(PlacedOrder {
                    account_id: placement.account_id,
                    status: OrderStatus::PendingPayment,
                    total: placement.quote.total,
                    invoice_id: placement.invoice_id,
                    discount: placement.discount.clone(),
                    pay_by: placement.pay_by,
                    payment_reference: None,
                });
            }
            OrderEvent::OrderPaid {
                payment_reference, ..
            } => {
                if let Some(order) = &mut self.placed {
                    order.status = OrderStatus::Paid;
                    order.payment_reference = Some(payment_reference);
                }
            }
            OrderEvent::OrderCancelled { .. } | OrderEvent::OrderExpired { .. } => {
                if let Some(order) = &mut self.placed {
                    order.status = OrderStatus::Cancelled;
                }
            }
        }
    }
}
