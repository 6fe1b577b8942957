//! Executing a command against one aggregate: load, decide, append, with bounded conflict retries.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistedEventStore, SerializedEvent};
use cqrs_es::{Aggregate, AggregateError, DomainEvent, EventEnvelope, EventStore};
use postgres_es::PostgresEventRepository;
use rand::Rng;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};
use stratus_projections::FeedPosition;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::metadata::CommandMetadata;

/// How many times a command is decided again after another writer appended to the same aggregate
/// first. Each retry reloads the aggregate, so the decision is always made on the newest state.
pub const MAX_CONFLICT_RETRIES: u32 = 8;
/// Upper bound of the random pause before a retry, growing with each attempt (milliseconds).
pub const CONFLICT_BACKOFF_STEP_MS: u64 = 3;
/// PostgreSQL's SQLSTATE for a unique violation: on `events`, another writer took the sequence.
const UNIQUE_VIOLATION: &str = "23505";
/// How many locks an aggregate's leader and a dry-run `load` of it are spread over: the lock keeps
/// a load from taking the cached state while a burst decides on it. Two aggregates share a lock
/// only when their ids hash alike, which costs a short wait and never correctness.
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

/// Aggregates kept in memory per store at most: enough for every hot aggregate of a busy
/// deployment.
pub const AGGREGATE_CACHE_CAPACITY: usize = 10_000;
/// Events folded into the aggregates a store keeps in memory, at most. A count alone does not
/// bound memory: a wallet's state grows with its stream (it keeps every ledger reference, about
/// 150 bytes each), so 10,000 long-lived wallets could hold gigabytes. This bounds one store's
/// cache to tens of MB. The most recently used aggregate always stays, however long its stream:
/// a hot aggregate is what the cache is for.
pub const AGGREGATE_CACHE_EVENTS: usize = 200_000;
/// A snapshot is written when this many events were appended since the last one, so that a cold
/// load replays at most this many events whatever the length of the stream.
pub const SNAPSHOT_EVERY_EVENTS: usize = 100;
/// On a long stream a snapshot waits until the stream has grown by this fraction (1/10) of its
/// length, if that is more than [`SNAPSHOT_EVERY_EVENTS`]. A state that grows with its stream (a
/// wallet keeps every ledger reference) costs time in proportion to its length to serialise and
/// write, so spacing snapshots in proportion keeps the cost per command constant; a cold load
/// reads the snapshot (itself proportional to the stream) and at most a tenth more events. Every
/// 100 events, a 13,000-event wallet's snapshot landed on one command in a hundred: the (f)
/// scenario's p99 (docs/benchmarks.md).
pub const SNAPSHOT_STREAM_FRACTION: usize = 10;
/// Snapshots go through a pool of their own with this many connections: a snapshot of a long
/// stream is a statement of megabytes, and the connection that sends it keeps a buffer that large
/// for as long as it lives, so only these connections should ever hold one.
pub const SNAPSHOT_CONNECTIONS: u32 = 1;
/// An idle snapshot connection is closed after this long (it is opened again on demand).
pub const SNAPSHOT_CONNECTION_IDLE_MS: u64 = 30_000;

/// Events after the last snapshot that make the next one due, on a stream at `sequence`.
pub fn snapshot_interval(sequence: usize) -> usize {
    SNAPSHOT_EVERY_EVENTS.max(sequence / SNAPSHOT_STREAM_FRACTION)
}
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
    /// Boxed so that the map's slots stay small: a map sized for 10,000 entries holds its
    /// capacity even when half empty, and an inline aggregate made each slot hundreds of bytes.
    loaded: Box<Loaded<A>>,
    used: u64,
}

/// A map of loaded aggregates bounded by count and by events folded in (the size of a state
/// grows with its stream). When either bound is reached, the least recently used entries go
/// until both are at seven eighths, so that evictions come in rounds rather than on every put.
struct AggregateCache<A> {
    entries: HashMap<String, CacheEntry<A>>,
    clock: u64,
    /// Sum of the entries' weights ([`weight`]).
    events: usize,
    capacity: usize,
    max_events: usize,
}

/// What an entry counts against the events bound: the events folded into it, 1 at least.
fn weight<A>(loaded: &Loaded<A>) -> usize {
    loaded.sequence.max(1)
}

impl<A> AggregateCache<A> {
    fn new(capacity: usize, max_events: usize) -> Self {
        Self {
            entries: HashMap::new(),
            clock: 0,
            events: 0,
            capacity,
            max_events,
        }
    }

    fn take(&mut self, id: &str) -> Option<Loaded<A>> {
        let entry = self.entries.remove(id)?;
        self.events = self.events.saturating_sub(weight(&entry.loaded));
        Some(*entry.loaded)
    }

    fn put(&mut self, id: &str, loaded: Loaded<A>) {
        if let Some(previous) = self.entries.remove(id) {
            self.events = self.events.saturating_sub(weight(&previous.loaded));
        }
        let added = weight(&loaded);
        if self.entries.len() >= self.capacity
            || self.events.saturating_add(added) > self.max_events
        {
            self.evict(added);
        }
        self.clock += 1;
        self.events = self.events.saturating_add(added);
        self.entries.insert(
            id.to_owned(),
            CacheEntry {
                loaded: Box::new(loaded),
                used: self.clock,
            },
        );
    }

    /// Drops the least recently used entries until, with an entry of `added` events, both the
    /// count and the events are at seven eighths of their bounds (or nothing is left).
    fn evict(&mut self, added: usize) {
        let keep_entries = (self.capacity - self.capacity / 8).saturating_sub(1);
        let keep_events = (self.max_events - self.max_events / 8).saturating_sub(added);
        let mut ages: Vec<(u64, usize)> = self
            .entries
            .values()
            .map(|entry| (entry.used, weight(&entry.loaded)))
            .collect();
        ages.sort_unstable();
        let mut entries = ages.len();
        let mut events = self.events;
        let mut cut = 0;
        for (used, weight) in ages {
            if entries <= keep_entries && events <= keep_events {
                break;
            }
            entries -= 1;
            events = events.saturating_sub(weight);
            cut = used;
        }
        self.entries.retain(|_, entry| entry.used > cut);
        self.events = events;
    }
}

/// The event store for one aggregate type on PostgreSQL, with an in-process cache of loaded
/// aggregates, snapshots of our own and group commit (ADR 0013, ADR 0014; the library's snapshot
/// modes are defective in cqrs-es 0.5.0, see ADR 0001, so postgres-es serves loads only).
///
/// It plays the part of `cqrs_es::CqrsFramework::execute_with_metadata`, which returns nothing, and
/// additionally returns the committed events and their feed position and retries conflicts.
///
/// Commands on the same aggregate are serialised inside the process: they queue, and one task at
/// a time (the aggregate's *leader*) takes every command queued so far, decides them one after the
/// other on the in-memory state, and appends all their events in one statement — one commit for a
/// burst of commands on a hot aggregate instead of one each. Each command keeps its own metadata
/// and its own answer; a refusal refuses only its command. Writers in other processes are still
/// caught by the log's primary key (the state is then reloaded and the whole burst decided
/// again), and refusals or no-ops decided on cached state are checked against the log before they
/// are answered, so a stale cache can never change an answer. The leader runs on its own task:
/// a caller that goes away (a client hanging up) cannot abandon the commands of the others.
pub struct AggregateStore<A: Aggregate> {
    inner: Arc<Inner<A>>,
}

struct Inner<A: Aggregate> {
    store: PersistedEventStore<PostgresEventRepository, A>,
    pool: PgPool,
    /// Where snapshots are written ([`SNAPSHOT_CONNECTIONS`]).
    snapshot_pool: PgPool,
    services: A::Services,
    max_conflict_retries: AtomicU32,
    locks: Arc<[tokio::sync::Mutex<()>]>,
    cache: Mutex<AggregateCache<A>>,
    /// The commands waiting per aggregate; an aggregate has an entry exactly while a leader runs
    /// for it.
    queues: Mutex<HashMap<String, Vec<Job<A>>>>,
}

/// A command waiting for its aggregate's leader.
struct Job<A: Aggregate> {
    command: A::Command,
    metadata: HashMap<String, String>,
    reply: oneshot::Sender<Result<Appended<A>, CommandError<A::Error>>>,
}

/// What the aggregate decided for one command of a burst.
enum Decision<A: Aggregate> {
    Append(Vec<A::Event>),
    Refused(A::Error),
    NoOp,
}

/// Why a whole burst failed: every command of it gets the same answer.
enum BurstFailure {
    Conflict,
    Infrastructure(String),
}

/// The message of an infrastructure failure shared by the commands of a burst.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SharedFailure(String);

impl BurstFailure {
    fn of<E: StdError>(err: CommandError<E>) -> Self {
        match err {
            CommandError::Conflict => Self::Conflict,
            other => Self::Infrastructure(other.to_string()),
        }
    }
}

/// Why an append was not made.
enum AppendFailure {
    /// Another writer appended at one of these sequence numbers first.
    Conflict,
    Infrastructure(String),
}

impl<A> AggregateStore<A>
where
    A: Aggregate + 'static,
    A::Command: Clone + Send + Sync + 'static,
    A::Error: Send + Sync + 'static,
{
    pub fn new(pool: PgPool, services: A::Services) -> Self {
        let repository = PostgresEventRepository::new(pool.clone());
        Self {
            inner: Arc::new(Inner {
                store: PersistedEventStore::new_event_store(repository),
                snapshot_pool: PgPoolOptions::new()
                    .max_connections(SNAPSHOT_CONNECTIONS)
                    .min_connections(0)
                    .idle_timeout(Duration::from_millis(SNAPSHOT_CONNECTION_IDLE_MS))
                    .connect_lazy_with((*pool.connect_options()).clone()),
                pool,
                services,
                max_conflict_retries: AtomicU32::new(MAX_CONFLICT_RETRIES),
                locks: (0..COMMAND_LOCK_STRIPES)
                    .map(|_| tokio::sync::Mutex::new(()))
                    .collect(),
                cache: Mutex::new(AggregateCache::new(
                    AGGREGATE_CACHE_CAPACITY,
                    AGGREGATE_CACHE_EVENTS,
                )),
                queues: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Changes the retry budget (tests use 0 to see raw conflicts).
    pub fn with_max_conflict_retries(self, retries: u32) -> Self {
        self.inner
            .max_conflict_retries
            .store(retries, Ordering::Relaxed);
        self
    }

    /// Lets the aggregate decide `command` on its current state and appends the resulting events
    /// with `metadata`, deciding again on the newest state when another writer appended first.
    #[tracing::instrument(skip(self, command, metadata), fields(aggregate = A::TYPE, command_id = %metadata.command_id))]
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
    ) -> Result<Appended<A>, CommandError<A::Error>> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            command,
            metadata: metadata.to_map(),
            reply,
        };
        let lead = {
            let mut queues = self.inner.queues();
            match queues.get_mut(aggregate_id) {
                Some(queue) => {
                    queue.push(job);
                    false
                }
                None => {
                    queues.insert(aggregate_id.to_owned(), vec![job]);
                    true
                }
            }
        };
        if lead {
            let inner = Arc::clone(&self.inner);
            let aggregate_id = aggregate_id.to_owned();
            tokio::spawn(
                async move { inner.lead(aggregate_id).await }.instrument(tracing::Span::current()),
            );
        }
        match answer.await {
            Ok(answer) => answer,
            // Only a panic in the leader drops a command unanswered.
            Err(_) => Err(CommandError::infra(SharedFailure(
                "the command's leader ended without an answer".to_owned(),
            ))),
        }
    }

    /// The current state of one aggregate, without deciding anything (for a dry run such as a
    /// quote, which asks an aggregate's own rules what a command would decide). A missing
    /// aggregate is its default state. A cached state is brought up to date with the log first.
    pub async fn load(&self, aggregate_id: &str) -> Result<A, CommandError<A::Error>>
    where
        A: Clone,
    {
        let inner = &self.inner;
        let _serialised = inner.lock_of(aggregate_id).lock().await;
        let cached = inner.cache().take(aggregate_id);
        let loaded = match cached {
            Some(mut loaded) => {
                inner.catch_up(aggregate_id, &mut loaded).await?;
                loaded
            }
            None => inner.load_fresh(aggregate_id).await?,
        };
        let aggregate = loaded.aggregate.clone();
        if loaded.sequence > 0 {
            inner.cache().put(aggregate_id, loaded);
        }
        Ok(aggregate)
    }

    /// Asks the state this process holds in its cache for one aggregate, without reading the log,
    /// so the answer may be behind the log. Only for facts that stay true once true (a wallet that
    /// is open stays open), to skip a lookup. `None` when the aggregate is not cached, or while a
    /// command is being decided on it.
    pub fn cached<R>(&self, aggregate_id: &str, ask: impl FnOnce(&A) -> R) -> Option<R> {
        self.inner
            .cache()
            .entries
            .get(aggregate_id)
            .map(|entry| ask(&entry.loaded.aggregate))
    }

    /// The feed position of the newest event of one aggregate (`None`: it has none), for a caller
    /// that must read a projection at least as new as the log is about this aggregate.
    pub async fn latest_position(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<FeedPosition>, CommandError<A::Error>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT transaction_id::text, global_position FROM events \
             WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence DESC LIMIT 1",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(CommandError::infra)?;
        row.map(|(transaction_id, global_position)| {
            FeedPosition::from_db(&transaction_id, global_position).map_err(CommandError::infra)
        })
        .transpose()
    }

    /// Every event of one aggregate, oldest first (for tools and tests; the API reads projections).
    pub async fn load_events(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, CommandError<A::Error>> {
        self.inner
            .store
            .load_events(aggregate_id)
            .await
            .map_err(infra_of)
    }
}

/// Removes a leader's queue entry if the leader ends without doing so itself (a panic while
/// deciding): the commands still queued are then answered with an error instead of waiting for
/// a leader that will never come, and the next command on the aggregate starts a new one.
struct Leading<'a, A: Aggregate> {
    inner: &'a Inner<A>,
    aggregate_id: &'a str,
    finished: bool,
}

impl<A: Aggregate> Drop for Leading<'_, A> {
    fn drop(&mut self) {
        if !self.finished {
            self.inner
                .queues
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remove(self.aggregate_id);
        }
    }
}

impl<A> Inner<A>
where
    A: Aggregate + 'static,
    A::Command: Clone + Send + Sync + 'static,
    A::Error: Send + Sync + 'static,
{
    /// The lock that the leader of `aggregate_id` (and a dry-run load of it) takes.
    fn lock_of(&self, aggregate_id: &str) -> &tokio::sync::Mutex<()> {
        let mut hasher = DefaultHasher::new();
        aggregate_id.hash(&mut hasher);
        let stripes = self.locks.len().max(1);
        // The remainder is below `stripes`, which is a usize, so the conversion cannot fail.
        let index = usize::try_from(hasher.finish() % stripes as u64).unwrap_or(0);
        &self.locks[index]
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, AggregateCache<A>> {
        // The cache holds no invariant a panic could break halfway: keep using it.
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn queues(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Job<A>>>> {
        // Every change to the map is a single insert, push, take or remove.
        self.queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The leader of one aggregate: decides and appends the queued commands burst by burst until
    /// the queue is empty, then gives up the lead (under the queue's lock, so no command is left
    /// behind).
    async fn lead(&self, aggregate_id: String) {
        let mut leading = Leading {
            inner: self,
            aggregate_id: &aggregate_id,
            finished: false,
        };
        loop {
            let _serialised = self.lock_of(&aggregate_id).lock().await;
            let jobs = {
                let mut queues = self.queues();
                match queues.get_mut(&aggregate_id) {
                    Some(queue) if !queue.is_empty() => std::mem::take(queue),
                    _ => {
                        queues.remove(&aggregate_id);
                        leading.finished = true;
                        return;
                    }
                }
            };
            let (jobs, replies): (Vec<_>, Vec<_>) = jobs
                .into_iter()
                .map(|job| ((job.command, job.metadata), job.reply))
                .unzip();
            let answers = match self.decide_and_append(&aggregate_id, &jobs).await {
                Ok(answers) => answers,
                Err(failure) => jobs
                    .iter()
                    .map(|_| {
                        Err(match &failure {
                            BurstFailure::Conflict => CommandError::Conflict,
                            BurstFailure::Infrastructure(message) => {
                                CommandError::infra(SharedFailure(message.clone()))
                            }
                        })
                    })
                    .collect(),
            };
            for (reply, answer) in replies.into_iter().zip(answers) {
                // The caller may have gone away; its command's outcome stands either way.
                reply.send(answer).ok();
            }
        }
    }

    /// Decides a burst of commands one after the other on the cached (or loaded) state and
    /// appends all their events at once; one answer per command, in order.
    async fn decide_and_append(
        &self,
        aggregate_id: &str,
        jobs: &[(A::Command, HashMap<String, String>)],
    ) -> Result<Vec<Result<Appended<A>, CommandError<A::Error>>>, BurstFailure> {
        let mut attempt: u32 = 0;
        // A cached state not yet checked against the log in this call.
        let cached = self.cache().take(aggregate_id);
        let mut unverified = cached.is_some();
        let mut loaded = match cached {
            Some(loaded) => loaded,
            None => self
                .load_fresh(aggregate_id)
                .await
                .map_err(BurstFailure::of)?,
        };
        'burst: loop {
            let base = loaded.sequence;
            let mut decisions: Vec<Decision<A>> = Vec::with_capacity(jobs.len());
            let mut pending: Vec<A::Event> = Vec::new();
            for (command, _) in jobs {
                // `handle` applies each event it writes to the aggregate at once (cqrs-es 0.5's
                // `EventSink::write`), so after a decision that wrote events the state in
                // `loaded` is the state after them, which is what the next command decides on.
                let sink: EventSink<A> = EventSink::default();
                let decided = loaded
                    .aggregate
                    .handle(command.clone(), &self.services, &sink)
                    .await;
                let events = sink.collect().await;
                match decided {
                    Ok(()) if events.is_empty() => decisions.push(Decision::NoOp),
                    Ok(()) => {
                        pending.extend(events.iter().cloned());
                        decisions.push(Decision::Append(events));
                    }
                    Err(refusal) => {
                        if !events.is_empty() {
                            // Refused after writing events: the state holds events that will
                            // never be appended. Rebuild it from the log and this burst.
                            let fresh = self
                                .load_fresh(aggregate_id)
                                .await
                                .map_err(BurstFailure::of)?;
                            let moved = fresh.sequence != base;
                            loaded = fresh;
                            if moved {
                                unverified = false;
                                continue 'burst;
                            }
                            for event in &pending {
                                loaded.aggregate.apply(event.clone());
                            }
                        }
                        decisions.push(Decision::Refused(refusal));
                    }
                }
            }
            if pending.is_empty() {
                if unverified {
                    // Decided on cached state without appending: make sure nothing newer
                    // exists, and decide again on the log's state if something does.
                    unverified = false;
                    if self
                        .catch_up(aggregate_id, &mut loaded)
                        .await
                        .map_err(BurstFailure::of)?
                    {
                        continue 'burst;
                    }
                }
                self.cache().put(aggregate_id, loaded);
                return Ok(answers(
                    aggregate_id,
                    base,
                    jobs,
                    decisions,
                    &HashMap::new(),
                ));
            }
            match self.append(aggregate_id, base, jobs, &decisions).await {
                Ok(positions) => {
                    stratus_projections::feed::announce_append(A::TYPE);
                    loaded.sequence = base.saturating_add(pending.len());
                    if loaded.sequence.saturating_sub(loaded.snapshot)
                        >= snapshot_interval(loaded.sequence)
                    {
                        self.snapshot(aggregate_id, &mut loaded);
                    }
                    self.cache().put(aggregate_id, loaded);
                    return Ok(answers(aggregate_id, base, jobs, decisions, &positions));
                }
                Err(AppendFailure::Conflict)
                    if attempt < self.max_conflict_retries.load(Ordering::Relaxed) =>
                {
                    attempt += 1;
                    let max_ms = CONFLICT_BACKOFF_STEP_MS.saturating_mul(u64::from(attempt));
                    let pause = rand::thread_rng().gen_range(0..=max_ms);
                    tracing::debug!(
                        attempt,
                        pause_ms = pause,
                        "aggregate conflict; deciding again"
                    );
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    loaded = self
                        .load_fresh(aggregate_id)
                        .await
                        .map_err(BurstFailure::of)?;
                    unverified = false;
                }
                Err(AppendFailure::Conflict) => return Err(BurstFailure::Conflict),
                Err(AppendFailure::Infrastructure(message)) => {
                    return Err(BurstFailure::Infrastructure(message))
                }
            }
        }
    }

    /// Appends the events of a burst after sequence `base`, in one statement (one transaction,
    /// one commit), each command's events with its own metadata. Answers the feed position of
    /// every appended sequence number.
    async fn append(
        &self,
        aggregate_id: &str,
        base: usize,
        jobs: &[(A::Command, HashMap<String, String>)],
        decisions: &[Decision<A>],
    ) -> Result<HashMap<i64, FeedPosition>, AppendFailure> {
        let infra = |err: &dyn std::fmt::Display| AppendFailure::Infrastructure(err.to_string());
        let mut sequences: Vec<i64> = Vec::new();
        let mut event_types: Vec<String> = Vec::new();
        let mut event_versions: Vec<String> = Vec::new();
        let mut payloads: Vec<serde_json::Value> = Vec::new();
        let mut metadatas: Vec<serde_json::Value> = Vec::new();
        let mut sequence = base;
        for ((_, metadata), decision) in jobs.iter().zip(decisions) {
            let Decision::Append(events) = decision else {
                continue;
            };
            let metadata = serde_json::to_value(metadata).map_err(|e| infra(&e))?;
            for event in events {
                sequence = sequence.saturating_add(1);
                sequences.push(i64::try_from(sequence).map_err(|e| infra(&e))?);
                event_types.push(event.event_type());
                event_versions.push(event.event_version());
                payloads.push(serde_json::to_value(event).map_err(|e| infra(&e))?);
                metadatas.push(metadata.clone());
            }
        }
        let rows = sqlx::query(
            "INSERT INTO events \
                 (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             SELECT $1, $2, e.sequence, e.event_type, e.event_version, e.payload, e.metadata \
             FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[]) \
                 AS e (sequence, event_type, event_version, payload, metadata) \
             RETURNING sequence, transaction_id::text AS transaction_id, global_position",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .bind(&sequences)
        .bind(&event_types)
        .bind(&event_versions)
        .bind(&payloads)
        .bind(&metadatas)
        .fetch_all(&self.pool)
        .await
        .map_err(|err| match &err {
            sqlx::Error::Database(db) if db.code().as_deref() == Some(UNIQUE_VIOLATION) => {
                AppendFailure::Conflict
            }
            _ => infra(&err),
        })?;
        let mut positions = HashMap::with_capacity(rows.len());
        for row in rows {
            let sequence: i64 = row.try_get("sequence").map_err(|e| infra(&e))?;
            let tx: String = row.try_get("transaction_id").map_err(|e| infra(&e))?;
            let global: i64 = row.try_get("global_position").map_err(|e| infra(&e))?;
            let position = FeedPosition::from_db(&tx, global).map_err(|e| infra(&e))?;
            positions.insert(sequence, position);
        }
        Ok(positions)
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
    fn snapshot(&self, aggregate_id: &str, loaded: &mut Loaded<A>) {
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
        let pool = self.snapshot_pool.clone();
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
}

/// Each command's answer: its events with their sequence numbers, metadata and the feed position
/// of its last one; its refusal; or nothing for a no-op.
fn answers<A: Aggregate>(
    aggregate_id: &str,
    base: usize,
    jobs: &[(A::Command, HashMap<String, String>)],
    decisions: Vec<Decision<A>>,
    positions: &HashMap<i64, FeedPosition>,
) -> Vec<Result<Appended<A>, CommandError<A::Error>>> {
    let mut sequence = base;
    jobs.iter()
        .zip(decisions)
        .map(|((_, metadata), decision)| match decision {
            Decision::Refused(refusal) => Err(CommandError::Refused(refusal)),
            Decision::NoOp => Ok(Appended {
                events: Vec::new(),
                position: None,
            }),
            Decision::Append(events) => {
                let events: Vec<EventEnvelope<A>> = events
                    .into_iter()
                    .map(|payload| {
                        sequence = sequence.saturating_add(1);
                        EventEnvelope {
                            aggregate_id: aggregate_id.to_owned(),
                            sequence,
                            payload,
                            metadata: metadata.clone(),
                        }
                    })
                    .collect();
                let position = i64::try_from(sequence)
                    .ok()
                    .and_then(|last| positions.get(&last).copied());
                Ok(Appended { events, position })
            }
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::{snapshot_interval, AggregateCache, Loaded};

    fn loaded(sequence: usize) -> Loaded<()> {
        Loaded {
            aggregate: (),
            sequence,
            snapshot: 0,
        }
    }

    fn held(cache: &AggregateCache<()>) -> Vec<String> {
        let mut ids: Vec<String> = cache.entries.keys().cloned().collect();
        ids.sort();
        ids
    }

    #[test]
    fn a_full_cache_drops_its_least_recently_used_eighth() {
        let mut cache = AggregateCache::new(16, 1_000_000);
        for i in 0..16 {
            cache.put(&format!("a{i:02}"), loaded(1));
        }
        assert_eq!(cache.entries.len(), 16);
        // a00 is used again, so a01 and a02 are the oldest.
        let a00 = cache.take("a00").map(|l| l.sequence);
        assert_eq!(a00, Some(1));
        cache.put("a00", loaded(1));
        cache.put("new", loaded(1));
        let ids = held(&cache);
        assert_eq!(ids.len(), 14);
        assert!(ids.contains(&"a00".to_owned()) && ids.contains(&"new".to_owned()));
        assert!(!ids.contains(&"a01".to_owned()) && !ids.contains(&"a02".to_owned()));
        assert_eq!(cache.events, 14);
    }

    #[test]
    fn the_events_folded_in_bound_the_cache_as_well_as_the_count() {
        let mut cache = AggregateCache::new(10_000, 1_000);
        for i in 0..4 {
            cache.put(&format!("w{i}"), loaded(200));
        }
        assert_eq!(cache.events, 800);
        // 300 more would make 1,100: the oldest go until 875 - 300 = 575 remain.
        cache.put("long", loaded(300));
        assert_eq!(held(&cache), ["long", "w2", "w3"]);
        assert_eq!(cache.events, 700);
        // Taking an entry out gives its weight back; putting it back with more events counts them.
        let taken = cache.take("w3").map(|l| l.sequence);
        assert_eq!((taken, cache.events), (Some(200), 500));
        cache.put("w3", loaded(250));
        assert_eq!(cache.events, 750);
    }

    #[test]
    fn the_most_recent_aggregate_stays_however_long_its_stream() {
        let mut cache = AggregateCache::new(10_000, 1_000);
        cache.put("small", loaded(10));
        cache.put("hot", loaded(18_000));
        assert_eq!(held(&cache), ["hot"]);
        assert_eq!(cache.events, 18_000);
        cache.put("hot", loaded(18_001));
        assert_eq!(
            (held(&cache), cache.events),
            (vec!["hot".to_owned()], 18_001)
        );
        // The next one pushes it out in turn.
        cache.put("other", loaded(5));
        assert_eq!((held(&cache), cache.events), (vec!["other".to_owned()], 5));
    }

    #[test]
    fn snapshots_are_spaced_by_100_events_then_by_a_tenth_of_the_stream() {
        assert_eq!(snapshot_interval(0), 100);
        assert_eq!(snapshot_interval(999), 100);
        assert_eq!(snapshot_interval(1_000), 100);
        assert_eq!(snapshot_interval(5_000), 500);
        assert_eq!(snapshot_interval(18_000), 1_800);
    }
}
