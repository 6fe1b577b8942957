//! Executing a command against one aggregate: load, decide, append, with bounded conflict retries.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore, SerializedEvent};
use cqrs_es::{Aggregate, AggregateError, EventEnvelope, EventStore};
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

/// Aggregates kept in memory per store: enough for every hot aggregate of a busy deployment, and
/// bounded so the process's memory is (a wallet with a long history is the largest entry).
pub const AGGREGATE_CACHE_CAPACITY: usize = 10_000;
/// A snapshot is written when this many events were appended since the last one, so that a cold
/// load replays at most this many events whatever the length of the stream.
pub const SNAPSHOT_EVERY_EVENTS: usize = 100;
/// The build's domain fingerprint (commands/build.rs): a snapshot taken by a build with other
/// domain code is ignored, since its `apply` may fold events differently.
pub const SNAPSHOT_SCHEMA: &str = env!("STRATUS_DOMAIN_FINGERPRINT");

/// One aggregate's state as this process last saw it committed.
struct Loaded<A> {
    aggregate: A,
    /// The sequence of the last event folded in (0: nothing yet).
    sequence: usize,
    /// The sequence of the newest snapshot in the database (0: none).
    snapshot: usize,
}

struct CacheEntry<A> {
    loaded: Loaded<A>,
    used: u64,
}

/// A bounded map of loaded aggregates; the least recently used eighth goes when it is full.
struct AggregateCache<A> {
    entries: HashMap<String, CacheEntry<A>>,
    clock: u64,
    capacity: usize,
}

impl<A> AggregateCache<A> {
    fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            clock: 0,
            capacity,
        }
    }

    fn take(&mut self, id: &str) -> Option<Loaded<A>> {
        self.entries.remove(id).map(|entry| entry.loaded)
    }

    fn put(&mut self, id: &str, loaded: Loaded<A>) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(id) {
            let mut ages: Vec<u64> = self.entries.values().map(|e| e.used).collect();
            ages.sort_unstable();
            let cut = ages.get(self.capacity / 8).copied().unwrap_or(u64::MAX);
            self.entries.retain(|_, entry| entry.used > cut);
        }
        self.clock += 1;
        self.entries.insert(
            id.to_owned(),
            CacheEntry {
                loaded,
                used: self.clock,
            },
        );
    }
}

/// The event store for one aggregate type on postgres-es, with an in-process cache of loaded
/// aggregates and snapshots of our own (ADR 0013; the library's snapshot modes are defective in
/// 0.5.0, see ADR 0001, so postgres-es is used as a pure event store).
///
/// It plays the part of `cqrs_es::CqrsFramework::execute_with_metadata`, which returns nothing, and
/// additionally returns the committed events and their feed position and retries conflicts.
///
/// Commands on the same aggregate are serialised inside the process (a striped lock), so a burst
/// of commands on one hot aggregate queues instead of exhausting its conflict retries, and the
/// aggregate is decided on in memory: a command costs the append, not a replay. Writers in other
/// processes are still caught by the event store's optimistic check (the cached state is then
/// reloaded and the command decided again), and a refusal or no-op decided on cached state is
/// checked against the log before it is answered, so a stale cache can never change an answer.
pub struct AggregateStore<A: Aggregate> {
    store: PersistedEventStore<PostgresEventRepository, A>,
    pool: PgPool,
    services: A::Services,
    max_conflict_retries: u32,
    locks: Arc<[tokio::sync::Mutex<()>]>,
    cache: Mutex<AggregateCache<A>>,
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
            cache: Mutex::new(AggregateCache::new(AGGREGATE_CACHE_CAPACITY)),
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

    fn cache(&self) -> std::sync::MutexGuard<'_, AggregateCache<A>> {
        // The cache holds no invariant a panic could break halfway: keep using it.
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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
        let committed = {
            let _serialised = self.lock_of(aggregate_id).lock().await;
            self.decide_and_append(aggregate_id, command, metadata)
                .await?
        };
        // Outside the aggregate's lock: the next command on it need not wait for this lookup.
        let position = match committed.last() {
            Some(last) => Some(self.position_of(aggregate_id, last.sequence).await?),
            None => None,
        };
        Ok(Appended {
            events: committed,
            position,
        })
    }

    /// The part of [`AggregateStore::execute`] that runs under the aggregate's lock: decide on the
    /// cached (or loaded) state and append; the committed events, none for a no-op.
    async fn decide_and_append(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
    ) -> Result<Vec<EventEnvelope<A>>, CommandError<A::Error>>
    where
        A::Error: Send + Sync + 'static,
    {
        let mut attempt: u32 = 0;
        // A cached state not yet checked against the log in this call.
        let cached = self.cache().take(aggregate_id);
        let mut unverified = cached.is_some();
        let mut loaded = match cached {
            Some(loaded) => loaded,
            None => self.load_fresh(aggregate_id).await?,
        };
        loop {
            // `handle` applies each event it writes to the aggregate at once (cqrs-es 0.5's
            // `EventSink::write`), so after a decision that wrote events the state in `loaded` is
            // the state *after* them: right when the append succeeds, dirty when it does not.
            let sink: EventSink<A> = EventSink::default();
            let decided = loaded
                .aggregate
                .handle(command.clone(), &self.services, &sink)
                .await;
            let events = sink.collect().await;
            let events = match decided {
                Err(refusal) => {
                    if unverified {
                        // Decided on cached state without appending: make sure nothing newer
                        // exists, and decide again on the log's state if something does.
                        unverified = false;
                        if !events.is_empty() {
                            loaded = self.load_fresh(aggregate_id).await?;
                            continue;
                        }
                        if self.catch_up(aggregate_id, &mut loaded).await? {
                            continue;
                        }
                    }
                    if events.is_empty() {
                        self.cache().put(aggregate_id, loaded);
                    }
                    return Err(CommandError::Refused(refusal));
                }
                Ok(()) if events.is_empty() => {
                    if unverified {
                        unverified = false;
                        if self.catch_up(aggregate_id, &mut loaded).await? {
                            continue;
                        }
                    }
                    self.cache().put(aggregate_id, loaded);
                    return Ok(Vec::new());
                }
                Ok(()) => events,
            };
            let context = EventStoreAggregateContext {
                aggregate_id: aggregate_id.to_owned(),
                aggregate: A::default(),
                current_sequence: loaded.sequence,
                current_snapshot: None,
            };
            match self.store.commit(events, context, metadata.to_map()).await {
                Ok(committed) => {
                    stratus_projections::feed::announce_append();
                    if let Some(last) = committed.last() {
                        loaded.sequence = last.sequence;
                    }
                    if loaded.sequence.saturating_sub(loaded.snapshot) >= SNAPSHOT_EVERY_EVENTS {
                        self.snapshot(aggregate_id, &mut loaded).await;
                    }
                    self.cache().put(aggregate_id, loaded);
                    return Ok(committed);
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
                    loaded = self.load_fresh(aggregate_id).await?;
                    unverified = false;
                }
                Err(AggregateError::AggregateConflict) => return Err(CommandError::Conflict),
                Err(other) => return Err(infra_of(other)),
            }
        }
    }

    /// The current state of one aggregate, without deciding anything (for a dry run such as a
    /// quote, which asks an aggregate's own rules what a command would decide). A missing
    /// aggregate is its default state. A cached state is brought up to date with the log first.
    pub async fn load(&self, aggregate_id: &str) -> Result<A, CommandError<A::Error>>
    where
        A: Clone,
        A::Error: Send + Sync + 'static,
    {
        let _serialised = self.lock_of(aggregate_id).lock().await;
        let cached = self.cache().take(aggregate_id);
        let loaded = match cached {
            Some(mut loaded) => {
                self.catch_up(aggregate_id, &mut loaded).await?;
                loaded
            }
            None => self.load_fresh(aggregate_id).await?,
        };
        let aggregate = loaded.aggregate.clone();
        if loaded.sequence > 0 {
            self.cache().put(aggregate_id, loaded);
        }
        Ok(aggregate)
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

    /// The aggregate from its snapshot (when one of this build exists) and the events after it.
    async fn load_fresh(&self, aggregate_id: &str) -> Result<Loaded<A>, CommandError<A::Error>>
    where
        A::Error: Send + Sync + 'static,
    {
        let row = sqlx::query(
            "SELECT sequence, state FROM aggregate_snapshots \
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND schema = $3",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .bind(SNAPSHOT_SCHEMA)
        .fetch_optional(&self.pool)
        .await
        .map_err(CommandError::infra)?;
        let mut loaded = Loaded {
            aggregate: A::default(),
            sequence: 0,
            snapshot: 0,
        };
        if let Some(row) = row {
            let sequence: i64 = row.try_get("sequence").map_err(CommandError::infra)?;
            let state: serde_json::Value = row.try_get("state").map_err(CommandError::infra)?;
            // A state that decodes but does not encode back to itself (unknown or missing
            // fields filled by defaults) is not this aggregate's: it is not trusted.
            let decoded = serde_json::from_value::<A>(state.clone()).and_then(|aggregate| {
                match serde_json::to_value(&aggregate) {
                    Ok(again) if again == state => Ok(aggregate),
                    Ok(_) => Err(serde::de::Error::custom(
                        "the state does not encode back to itself",
                    )),
                    Err(err) => Err(err),
                }
            });
            match (usize::try_from(sequence), decoded) {
                (Ok(sequence), Ok(aggregate)) => {
                    loaded = Loaded {
                        aggregate,
                        sequence,
                        snapshot: sequence,
                    };
                }
                (_, Err(err)) => {
                    tracing::warn!(aggregate = A::TYPE, aggregate_id, error = %err,
                        "a snapshot does not decode; replaying the whole stream");
                }
                (Err(err), _) => {
                    tracing::warn!(aggregate = A::TYPE, aggregate_id, error = %err,
                        "a snapshot has an impossible sequence; replaying the whole stream");
                }
            }
        }
        self.catch_up(aggregate_id, &mut loaded).await?;
        Ok(loaded)
    }

    /// Folds the events after `loaded.sequence` into `loaded`; answers whether there were any.
    async fn catch_up(
        &self,
        aggregate_id: &str,
        loaded: &mut Loaded<A>,
    ) -> Result<bool, CommandError<A::Error>>
    where
        A::Error: Send + Sync + 'static,
    {
        let after = i64::try_from(loaded.sequence).map_err(CommandError::infra)?;
        let rows = sqlx::query(
            "SELECT aggregate_id, sequence, event_type, event_version, payload, metadata \
             FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 \
             ORDER BY sequence",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .bind(after)
        .fetch_all(&self.pool)
        .await
        .map_err(CommandError::infra)?;
        let found = !rows.is_empty();
        for row in rows {
            let sequence: i64 = row.try_get("sequence").map_err(CommandError::infra)?;
            let serialized = SerializedEvent {
                aggregate_id: row.try_get("aggregate_id").map_err(CommandError::infra)?,
                sequence: usize::try_from(sequence).map_err(CommandError::infra)?,
                aggregate_type: A::TYPE.to_owned(),
                event_type: row.try_get("event_type").map_err(CommandError::infra)?,
                event_version: row.try_get("event_version").map_err(CommandError::infra)?,
                payload: row.try_get("payload").map_err(CommandError::infra)?,
                metadata: row.try_get("metadata").map_err(CommandError::infra)?,
            };
            let envelope = EventEnvelope::<A>::try_from(serialized).map_err(CommandError::infra)?;
            loaded.aggregate.apply(envelope.payload);
            loaded.sequence = envelope.sequence;
        }
        Ok(found)
    }

    /// Writes the aggregate's state as its snapshot. A failure only costs a longer replay later,
    /// so it is logged and the command's answer stands.
    async fn snapshot(&self, aggregate_id: &str, loaded: &mut Loaded<A>) {
        // Serialised here, under the aggregate's lock; written on its own task, so the command
        // that crossed the threshold does not wait for a large state to reach the database.
        let state = match serde_json::to_string(&loaded.aggregate) {
            Ok(state) => state,
            Err(err) => {
                tracing::warn!(aggregate = A::TYPE, aggregate_id, error = %err, "snapshot not serialised");
                return;
            }
        };
        let Ok(sequence) = i64::try_from(loaded.sequence) else {
            return;
        };
        // Counted as taken: if the write fails, the next one comes 100 events later and a cold
        // load replays a little more meanwhile.
        loaded.snapshot = loaded.sequence;
        let pool = self.pool.clone();
        let aggregate_id = aggregate_id.to_owned();
        tokio::spawn(async move {
            let written = sqlx::query(
                "INSERT INTO aggregate_snapshots (aggregate_type, aggregate_id, sequence, schema, state) \
                 VALUES ($1, $2, $3, $4, $5::jsonb) \
                 ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE \
                 SET sequence = EXCLUDED.sequence, schema = EXCLUDED.schema, state = EXCLUDED.state, \
                     taken_at = now() \
                 WHERE aggregate_snapshots.sequence < EXCLUDED.sequence \
                    OR aggregate_snapshots.schema <> EXCLUDED.schema",
            )
            .bind(A::TYPE)
            .bind(&aggregate_id)
            .bind(sequence)
            .bind(SNAPSHOT_SCHEMA)
            .bind(state)
            .execute(&pool)
            .await;
            if let Err(err) = written {
                tracing::warn!(aggregate = A::TYPE, aggregate_id, error = %err, "snapshot not written");
            }
        });
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
