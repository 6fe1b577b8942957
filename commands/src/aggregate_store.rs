//! Executing a command against one aggregate: load, decide, append, with bounded conflict retries.

use std::collections::hash_map::DefaultHasher;
use std::error::Error as StdError;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventEnvelope, EventStore};
use postgres_es::PostgresEventRepository;
use rand::Rng;
use sqlx::{PgPool, Row};
use stratus_projections::FeedPosition;

use crate::metadata::CommandMetadata;

/// How many times a command is decided again after another writer appended to the same aggregate
/// first. Each retry reloads the aggregate, so the decision is always made on the newest state.
pub const MAX_CONFLICT_RETRIES: u32 = 8;
/// Upper bound of the random pause before a retry, growing with each attempt (milliseconds).
pub const CONFLICT_BACKOFF_STEP_MS: u64 = 3;
/// How many locks commands of one store are spread over. Commands on one aggregate always take the
/// same lock, so inside one process they queue instead of racing; two aggregates share a lock only
/// when their ids hash alike, which costs a short wait and never correctness.
pub const COMMAND_LOCK_STRIPES: usize = 1024;

/// Why a command did not append.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: StdError> {
    /// The aggregate refused the command: a business rule.
    #[error("refused: {0}")]
    Refused(E),
    /// Other writers kept winning the race for this aggregate after every retry.
    #[error("concurrent modification of the same aggregate; retries exhausted")]
    Conflict,
    /// The database or the stored data failed; the cause is for the log, not the caller.
    #[error("infrastructure failure: {0}")]
    Infrastructure(Box<dyn StdError + Send + Sync>),
}

impl<E: StdError> CommandError<E> {
    pub fn infra(err: impl StdError + Send + Sync + 'static) -> Self {
        Self::Infrastructure(Box::new(err))
    }
}

/// What a successful command appended.
#[derive(Debug)]
pub struct Appended<A: Aggregate> {
    /// The committed events with their sequence numbers; empty when the command changed nothing.
    pub events: Vec<EventEnvelope<A>>,
    /// The feed position of the last appended event, for read-your-writes.
    pub position: Option<FeedPosition>,
}

/// The cqrs-es event store for one aggregate type on postgres-es, used as a pure event store
/// (no snapshots: the library's snapshot modes are defective in 0.5.0, see ADR 0001).
///
/// It plays the part of `cqrs_es::CqrsFramework::execute_with_metadata`, which returns nothing, and
/// additionally returns the committed events and their feed position and retries conflicts.
///
/// Commands on the same aggregate are serialised inside the process (a striped lock), so a burst
/// of commands on one hot aggregate queues instead of exhausting its conflict retries. Writers in
/// other processes are still caught by the event store's optimistic check and retried.
pub struct AggregateStore<A: Aggregate> {
    store: PersistedEventStore<PostgresEventRepository, A>,
    pool: PgPool,
    services: A::Services,
    max_conflict_retries: u32,
    locks: Arc<[tokio::sync::Mutex<()>]>,
}

impl<A> AggregateStore<A>
where
    A: Aggregate,
    A::Command: Clone,
{
    pub fn new(pool: PgPool, services: A::Services) -> Self {
        let repository = PostgresEventRepository::new(pool.clone());
        Self {
            store: PersistedEventStore::new_event_store(repository),
            pool,
            services,
            max_conflict_retries: MAX_CONFLICT_RETRIES,
            locks: (0..COMMAND_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The lock that commands on `aggregate_id` take.
    fn lock_of(&self, aggregate_id: &str) -> &tokio::sync::Mutex<()> {
        let mut hasher = DefaultHasher::new();
        aggregate_id.hash(&mut hasher);
        let stripes = self.locks.len().max(1);
        // The remainder is below `stripes`, which is a usize, so the conversion cannot fail.
        let index = usize::try_from(hasher.finish() % stripes as u64).unwrap_or(0);
        &self.locks[index]
    }

    /// Changes the retry budget (tests use 0 to see raw conflicts).
    pub fn with_max_conflict_retries(mut self, retries: u32) -> Self {
        self.max_conflict_retries = retries;
        self
    }

    /// Loads the aggregate, lets it decide `command`, and appends the resulting events with
    /// `metadata`, retrying from a fresh load when another writer appended first.
    #[tracing::instrument(skip(self, command, metadata), fields(aggregate = A::TYPE, command_id = %metadata.command_id))]
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
    ) -> Result<Appended<A>, CommandError<A::Error>>
    where
        A::Error: Send + Sync + 'static,
    {
        let _serialised = self.lock_of(aggregate_id).lock().await;
        let mut attempt: u32 = 0;
        loop {
            let mut context = self
                .store
                .load_aggregate(aggregate_id)
                .await
                .map_err(infra_of)?;
            let sink: EventSink<A> = EventSink::default();
            context
                .aggregate()
                .handle(command.clone(), &self.services, &sink)
                .await
                .map_err(CommandError::Refused)?;
            let events = sink.collect().await;
            if events.is_empty() {
                return Ok(Appended {
                    events: Vec::new(),
                    position: None,
                });
            }
            match self.store.commit(events, context, metadata.to_map()).await {
                Ok(committed) => {
                    let position = match committed.last() {
                        Some(last) => Some(self.position_of(aggregate_id, last.sequence).await?),
                        None => None,
                    };
                    return Ok(Appended {
                        events: committed,
                        position,
                    });
                }
                Err(AggregateError::AggregateConflict) if attempt < self.max_conflict_retries => {
                    attempt += 1;
                    let max_ms = CONFLICT_BACKOFF_STEP_MS.saturating_mul(u64::from(attempt));
                    let pause = rand::thread_rng().gen_range(0..=max_ms);
                    tracing::debug!(
                        attempt,
                        pause_ms = pause,
                        "aggregate conflict; deciding again"
                    );
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(AggregateError::AggregateConflict) => return Err(CommandError::Conflict),
                Err(other) => return Err(infra_of(other)),
            }
        }
    }

    /// The current state of one aggregate, replayed from its events, without deciding anything
    /// (for a dry run such as a quote, which asks an aggregate's own rules what a command would
    /// decide). A missing aggregate is its default state.
    pub async fn load(&self, aggregate_id: &str) -> Result<A, CommandError<A::Error>>
    where
        A: Clone,
        A::Error: Send + Sync + 'static,
    {
        let mut context = self
            .store
            .load_aggregate(aggregate_id)
            .await
            .map_err(infra_of)?;
        Ok(context.aggregate().clone())
    }

    /// Every event of one aggregate, oldest first (for tools and tests; the API reads projections).
    pub async fn load_events(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, CommandError<A::Error>>
    where
        A::Error: Send + Sync + 'static,
    {
        self.store.load_events(aggregate_id).await.map_err(infra_of)
    }

    async fn position_of(
        &self,
        aggregate_id: &str,
        sequence: usize,
    ) -> Result<FeedPosition, CommandError<A::Error>>
    where
        A::Error: Send + Sync + 'static,
    {
        let sequence = i64::try_from(sequence).map_err(CommandError::infra)?;
        let row = sqlx::query(
            "SELECT transaction_id::text AS transaction_id, global_position FROM events \
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .bind(sequence)
        .fetch_one(&self.pool)
        .await
        .map_err(CommandError::infra)?;
        let tx: String = row.try_get("transaction_id").map_err(CommandError::infra)?;
        let pos: i64 = row
            .try_get("global_position")
            .map_err(CommandError::infra)?;
        FeedPosition::from_db(&tx, pos).map_err(CommandError::infra)
    }
}

fn infra_of<E: StdError>(err: AggregateError<E>) -> CommandError<E> {
    match err {
        AggregateError::UserError(e) => CommandError::Refused(e),
        AggregateError::AggregateConflict => CommandError::Conflict,
        AggregateError::DatabaseConnectionError(e)
        | AggregateError::DeserializationError(e)
        | AggregateError::UnexpectedError(e) => CommandError::Infrastructure(e),
    }
}
