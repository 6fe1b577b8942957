//! The invoice-issuer reactor: issues every drafted invoice that is still a draft, with the number
//! allocated for it (or a new one).
//!
//! [`crate::invoices::Invoices::create_and_issue`] drafts, allocates and issues in three steps; a
//! crash between the allocation and the `Issue` would leave a number on no invoice, a gap. This
//! reactor closes it: for every `InvoiceDrafted` it runs the same idempotent issue step, which
//! finds the number already allocated for the invoice (keyed by invoice id) or allocates one. It
//! usually races the service that drafted the invoice; both arrive at the same number, and the
//! second `Issue` records nothing. Command ids are derived from the event, so a replay, a retried
//! batch or a rebuild never acts twice.

use futures::future::BoxFuture;
use sqlx::PgConnection;
use stratus_domain::invoice::{Invoice, InvoiceError};
use stratus_domain::InvoiceId;
use stratus_projections::feed::{Subscriber, SubscriberError};
use stratus_projections::stored_event::StoredEvent;
use uuid::Uuid;

use crate::aggregate_store::CommandError;
use crate::invoices::Invoices;
use crate::metadata::CommandMetadata;

/// The subscriber name (its checkpoint row).
pub const NAME: &str = "invoice-issuer";

/// Namespace of the command ids this reactor derives from draft events.
const COMMAND_NAMESPACE: Uuid = Uuid::from_u128(0x1d94_b7c0_5e2a_4f18_a3c6_7b0e_d851_29fa);

/// Issues every draft.
#[derive(Clone)]
pub struct InvoiceIssuer {
    invoices: Invoices,
}

impl InvoiceIssuer {
    pub fn new(invoices: Invoices) -> Self {
        Self { invoices }
    }
}

impl Subscriber for InvoiceIssuer {
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        const TYPES: &[&str] = &[<Invoice as cqrs_es::Aggregate>::TYPE];
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
                if stored.aggregate_type != <Invoice as cqrs_es::Aggregate>::TYPE
                    || stored.event_type != "InvoiceDrafted"
                {
                    continue;
                }
                let invoice_id = Uuid::parse_str(&stored.aggregate_id)
                    .map(InvoiceId::from_uuid)
                    .map_err(|e| SubscriberError::decode(stored, e))?;
                let event_key = format!(
                    "{}:{}:{}",
                    stored.aggregate_type, stored.aggregate_id, stored.sequence
                );
                let command_id = Uuid::new_v5(&COMMAND_NAMESPACE, event_key.as_bytes());
                let mut metadata = CommandMetadata::system(command_id, &event_key);
                metadata.correlation_id = stored.aggregate_id.clone();
                match self.invoices.issue(invoice_id, &metadata).await {
                    Ok(_) => {}
                    // A draft voided before it was numbered has no number to issue.
                    Err(CommandError::Refused(InvoiceError::InvoiceVoid)) => {}
                    // Another refusal will not change on a retry; holding the feed back would
                    // stop every later invoice too.
                    Err(CommandError::Refused(refusal)) => {
                        tracing::error!(%invoice_id, code = refusal.code(), "a draft could not be issued");
                    }
                    Err(other) => return Err(SubscriberError::Command(other.to_string())),
                }
            }
            Ok(())
        })
    }

    /// Nothing to empty: the numbers and the invoices it issued are facts.
    fn reset<'a>(
        &'a self,
        _tx: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(async { Ok(()) })
    }
}
