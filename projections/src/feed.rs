//! The ordered feed: one runner serves every subscriber (projections and reactors).
//!
//! Reading order is `(transaction_id, global_position)`, and only events whose transaction id is
//! below the oldest transaction still running (`pg_snapshot_xmin(pg_current_snapshot())`) are read.
//! `global_position` alone is not safe: identity values are taken at insert time, so a transaction
//! that inserts early and commits late would put an event *behind* a checkpoint that has already
//! moved past it. A transaction id below xmin belongs to a transaction that has finished, so
//! everything at or below the fence is final and nothing can appear behind it any more.
//!
//! Each subscriber applies a batch and moves its checkpoint in one transaction (exactly-once in
//! effect). The checkpoint update is conditional on the checkpoint it started from, so a rebuild or a
//! second runner can never be overwritten by a stale one. A session advisory lock per subscriber
//! keeps one active runner across several `stratus` processes; the others stand by.
//! Runners wake at once when this process appends ([`announce_append`], called by the aggregate
//! store after each commit), on `LISTEN stratus_events` when another process does (each process
//! sends one NOTIFY per burst of its appends, from a single task and outside the appending
//! transactions: a NOTIFY inside them serialised every commit of the cluster), and poll slowly as a
//! fallback. A subscriber can name the aggregate types it acts on
//! ([`Subscriber::aggregate_types`]): an append of another type does not wake its runner, and its
//! batches pass over such events (position only, no payload sent or decoded) while its checkpoint
//! still moves through the whole log in order.
//!
//! A rebuild ([`Feed::rebuild`]) replays the whole log in one transaction: through `reset` and
//! `apply`, or, for a subscriber with a [`Subscriber::rebuilder`], into fresh tables that replace
//! the live ones at commit ([`crate::rebuild`], docs/adr/0015).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgListener};
use sqlx::{Connection, PgConnection, PgPool, Row};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

use crate::position::FeedPosition;
use crate::rebuild::{FreshTables, Rebuild, ReplayedEvent};
use crate::stored_event::{position_of_row, StoredEvent, EVENT_COLUMNS, FEED_ORDER};

/// Events applied per transaction: large enough to amortise the commit, small enough to keep a
/// batch's transaction short (a running transaction holds back every runner's fence).
pub const BATCH_SIZE: i64 = 500;
/// Events per batch of a rebuild, which runs in one transaction anyway: bigger batches mean fewer
/// rewrites of the same read-model rows (about 1.5× the rebuild rate of 500, docs/benchmarks.md).
pub const REBUILD_BATCH_SIZE: i64 = 5_000;
/// Batches a rebuild reads ahead of the one being applied: one keeps reading and writing
/// overlapped (they run on two connections, so on two cores); more would only hold more memory.
pub const REBUILD_READ_AHEAD_BATCHES: usize = 1;
/// Fallback poll when no notification arrives (a lost NOTIFY, a listener reconnecting).
pub const POLL_INTERVAL_MS: u64 = 1_000;
/// First wait when committed events sit behind the fence of a transaction still running.
pub const FENCE_RETRY_MIN_MS: u64 = 1;
/// Longest wait between fence re-checks: keeps a long transaction from turning into a busy loop,
/// yet short, because under a steady write load some transaction nearly always holds the fence
/// for a moment and every millisecond here is a millisecond of projection lag (docs/benchmarks.md).
pub const FENCE_RETRY_MAX_MS: u64 = 4;
/// How often a standby runner tries to take over a subscriber whose lock another process holds.
pub const STANDBY_RETRY_MS: u64 = 2_000;
/// Back-off after a failed batch (a broken connection, an event the subscriber cannot decode).
pub const ERROR_BACKOFF_MS: u64 = 1_000;
/// While waiting for read-your-writes on a subscriber that another process runs, how often the
/// checkpoint table is read.
pub const REMOTE_CHECKPOINT_POLL_MS: u64 = 10;
/// The channel on which processes tell each other about their appends; the payload lists the
/// aggregate types appended, comma-separated (empty: wake every subscriber).
pub const NOTIFY_CHANNEL: &str = "stratus_events";

/// The columns of a batch read for a subscriber that acts on some aggregate types only (`$4`):
/// the payload and metadata of the other events are not sent, since they are only passed over.
const FILTERED_EVENT_COLUMNS: &str = "aggregate_type, aggregate_id, sequence, event_type, \
     event_version, CASE WHEN aggregate_type = ANY($4) THEN payload END AS payload, \
     CASE WHEN aggregate_type = ANY($4) THEN metadata END AS metadata, global_position, \
     transaction_id::text AS transaction_id, recorded_at";

/// The columns of a rebuild's batch ([`read_replay_batch`]): the payload as text, to be
/// deserialised straight into the subscriber's event type, and no metadata, which no rebuild
/// reads (it was a third of the reading time, docs/adr/0015).
const REPLAY_COLUMNS: &str = "aggregate_type, aggregate_id, sequence, event_type, \
     event_version, payload::text AS payload, global_position, \
     transaction_id::text AS transaction_id, recorded_at";

/// [`REPLAY_COLUMNS`] for a subscriber of some aggregate types only (`$4`): other events come
/// with a NULL payload and are passed over.
const REPLAY_FILTERED_COLUMNS: &str = "aggregate_type, aggregate_id, sequence, event_type, \
     event_version, CASE WHEN aggregate_type = ANY($4) THEN payload::text END AS payload, \
     global_position, transaction_id::text AS transaction_id, recorded_at";

const FENCED_BATCH: &str = "SELECT {cols} FROM events \
     WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
       AND (transaction_id, global_position) > ($1::text::xid8, $2) \
     ORDER BY {order} LIMIT $3";

/// Appends made by this process: how many per aggregate type, and a signal bumped after every
/// committed append, watched by every feed of the process.
struct Appends {
    signal: watch::Sender<u64>,
    by_type: Mutex<HashMap<&'static str, u64>>,
}

fn appends() -> &'static Appends {
    static APPENDS: OnceLock<Appends> = OnceLock::new();
    APPENDS.get_or_init(|| Appends {
        signal: watch::channel(0).0,
        by_type: Mutex::new(HashMap::new()),
    })
}

/// Tells the feeds of this process (at once) and of other processes (through NOTIFY) that events
/// of `aggregate_type` were committed. Call it after the appending transaction has committed.
pub fn announce_append(aggregate_type: &'static str) {
    {
        let mut by_type = appends()
            .by_type
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = by_type.entry(aggregate_type).or_insert(0);
        *count = count.wrapping_add(1);
    }
    appends().signal.send_modify(|n| *n = n.wrapping_add(1));
}

/// The aggregate types whose append count moved since `seen`, which is brought up to date.
fn appended_types_since(seen: &mut HashMap<&'static str, u64>) -> Vec<&'static str> {
    let by_type = appends()
        .by_type
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut moved = Vec::new();
    for (kind, count) in by_type.iter() {
        if seen.insert(kind, *count) != Some(*count) {
            moved.push(*kind);
        }
    }
    moved
}

/// A reader of the log: a projection that writes read models, or a reactor.
pub trait Subscriber: Send + Sync + 'static {
    /// Stable name; the key of its checkpoint row and of `stratus projections rebuild NAME`.
    fn name(&self) -> &'static str;

    /// Applies a batch of events inside the feed's transaction; the checkpoint moves in the same
    /// transaction. Must be deterministic: a rebuild replays the same events through it.
    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [StoredEvent],
    ) -> BoxFuture<'a, Result<(), SubscriberError>>;

    /// Empties what the subscriber has built, before a rebuild from position zero (one without a
    /// [`Subscriber::rebuilder`]). Runs in the rebuild's transaction; use `DELETE` (not
    /// `TRUNCATE`) so readers keep the old model until commit.
    fn reset<'a>(&'a self, tx: &'a mut PgConnection) -> BoxFuture<'a, Result<(), SubscriberError>>;

    /// The aggregate types whose events the subscriber acts on; `None` (the default) for all.
    /// `apply` then receives only events of these types (the others are passed over, and the
    /// checkpoint moves past them), and appends of other types do not wake the runner: on a busy
    /// log that saves a transaction per subscriber per append (docs/benchmarks.md).
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// A replay of the whole log into fresh tables, for [`Feed::rebuild`] (see [`crate::rebuild`]);
    /// `None` (the default): a rebuild is `reset` and then `apply` batch after batch. A rebuilder
    /// must leave exactly the rows that `reset` and `apply` leave.
    fn rebuilder(&self) -> Option<Box<dyn Rebuild>> {
        None
    }
}

/// Why a subscriber could not apply a batch.
#[derive(Debug, thiserror::Error)]
pub enum SubscriberError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("event {event_type} v{event_version} at {position} cannot be decoded: {message}")]
    Decode {
        event_type: String,
        event_version: String,
        position: String,
        message: String,
    },
    /// A reactor's command failed for a reason other than a business rule (the batch is retried).
    #[error("a reactor command failed: {0}")]
    Command(String),
}

impl SubscriberError {
    /// The error for an event payload that does not match the subscriber's event type.
    pub fn decode(event: &StoredEvent, err: impl std::fmt::Display) -> Self {
        Self::Decode {
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            position: event.position.to_string(),
            message: err.to_string(),
        }
    }
}

/// Failures of the feed itself.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Subscriber(#[from] SubscriberError),
    #[error("no subscriber is named {0:?}")]
    UnknownSubscriber(String),
    #[error("the checkpoint of {0} was moved by someone else during the batch")]
    CheckpointMoved(&'static str),
}

struct Slot {
    subscriber: Arc<dyn Subscriber>,
    progress: watch::Sender<FeedPosition>,
    active: AtomicBool,
    wake: watch::Sender<u64>,
}

impl Slot {
    fn wake(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Whether an append of one of `kinds` concerns this subscriber.
    fn acts_on<S: AsRef<str>>(&self, kinds: &[S]) -> bool {
        match self.subscriber.aggregate_types() {
            None => true,
            Some(mine) => kinds.iter().any(|kind| mine.contains(&kind.as_ref())),
        }
    }
}

/// The set of subscribers of one process, their runners, wake-ups and progress.
pub struct Feed {
    pool: PgPool,
    slots: HashMap<&'static str, Slot>,
}

impl Feed {
    /// A feed over `pool` serving `subscribers`. Nothing runs until [`Feed::start`].
    pub fn new(pool: PgPool, subscribers: Vec<Arc<dyn Subscriber>>) -> Arc<Self> {
        let slots = subscribers
            .into_iter()
            .map(|subscriber| {
                let (progress, _) = watch::channel(FeedPosition::START);
                (
                    subscriber.name(),
                    Slot {
                        subscriber,
                        progress,
                        active: AtomicBool::new(false),
                        wake: watch::channel(0).0,
                    },
                )
            })
            .collect();
        Arc::new(Self { pool, slots })
    }

    /// The names of the subscribers, sorted.
    pub fn subscriber_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.slots.keys().copied().collect();
        names.sort_unstable();
        names
    }

    /// Starts the listener and one runner per subscriber; they stop when `shutdown` turns true.
    pub fn start(self: &Arc<Self>, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        let mut handles = vec![
            tokio::spawn(Arc::clone(self).listen(shutdown.clone())),
            tokio::spawn(Arc::clone(self).announce(shutdown.clone())),
        ];
        for name in self.subscriber_names() {
            handles.push(tokio::spawn(
                Arc::clone(self).run_subscriber(name, shutdown.clone()),
            ));
        }
        handles
    }

    /// Wakes every runner of this process at once.
    pub fn wake(&self) {
        for slot in self.slots.values() {
            slot.wake();
        }
    }

    /// Wakes the runners of the subscribers that act on one of `kinds` (aggregate types).
    fn wake_for_types<S: AsRef<str>>(&self, kinds: &[S]) {
        for slot in self.slots.values().filter(|slot| slot.acts_on(kinds)) {
            slot.wake();
        }
    }

    /// Waits until every named subscriber has applied the event at `target`, for at most `timeout`.
    /// Returns whether they all caught up in time. The named runners are woken first, whatever
    /// the type of the awaited event.
    pub async fn wait_for(
        &self,
        names: &[&str],
        target: FeedPosition,
        timeout: Duration,
    ) -> Result<bool, FeedError> {
        let deadline = Instant::now() + timeout;
        let mut slots = Vec::with_capacity(names.len());
        for name in names {
            let slot = self
                .slots
                .get(name)
                .ok_or_else(|| FeedError::UnknownSubscriber((*name).to_owned()))?;
            slot.wake();
            slots.push(slot);
        }
        for slot in slots {
            let mut progress = slot.progress.subscribe();
            loop {
                if *progress.borrow_and_update() >= target {
                    break;
                }
                let remote_poll = sleep(Duration::from_millis(REMOTE_CHECKPOINT_POLL_MS));
                tokio::select! {
                    changed = progress.changed() => {
                        if changed.is_err() { return Ok(false); }
                    }
                    () = remote_poll, if !slot.active.load(Ordering::Relaxed) => {
                        if checkpoint(&self.pool, slot.subscriber.name()).await? >= target {
                            break;
                        }
                    }
                    () = tokio::time::sleep_until(deadline) => return Ok(false),
                }
            }
        }
        Ok(true)
    }

    /// How far the named subscriber has got, when its runner is active in this process (`None`
    /// otherwise, or for an unknown name): it changes exactly when the runner commits a batch.
    pub fn local_progress(&self, name: &str) -> Option<FeedPosition> {
        let slot = self.slots.get(name)?;
        if !slot.active.load(Ordering::Relaxed) {
            return None;
        }
        let at = *slot.progress.borrow();
        Some(at)
    }

    /// The position of the newest event in the log, in feed order, or `START` when it is empty.
    pub async fn head(&self) -> Result<FeedPosition, FeedError> {
        head(&self.pool).await
    }

    /// How many events a subscriber still has to apply (counted up to `cap`).
    pub async fn lag(&self, name: &str, cap: i64) -> Result<i64, FeedError> {
        let at = checkpoint(&self.pool, name).await?;
        let lag: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT 1 FROM events \
             WHERE (transaction_id, global_position) > ($1::text::xid8, $2) \
             ORDER BY transaction_id, global_position LIMIT $3) pending",
        )
        .bind(at.transaction_id.to_string())
        .bind(at.global_position)
        .bind(cap)
        .fetch_one(&self.pool)
        .await?;
        Ok(lag)
    }

    /// Drops what the named subscriber has built and replays the whole log through it, in one
    /// transaction: readers see the old read model until the new one is complete.
    /// Returns the number of events replayed.
    pub async fn rebuild(&self, name: &str) -> Result<u64, FeedError> {
        let slot = self
            .slots
            .get(name)
            .ok_or_else(|| FeedError::UnknownSubscriber(name.to_owned()))?;
        let subscriber = Arc::clone(&slot.subscriber);
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        ensure_checkpoint_row(&mut tx, subscriber.name()).await?;
        // Lock the checkpoint row first: a live runner's conditional update now waits, then fails.
        sqlx::query("SELECT 1 FROM subscriber_checkpoints WHERE name = $1 FOR UPDATE")
            .bind(subscriber.name())
            .execute(&mut *tx)
            .await?;
        if let Some(rebuilder) = subscriber.rebuilder() {
            let (at, replayed) = self
                .rebuild_fresh(&mut tx, subscriber.as_ref(), rebuilder)
                .await?;
            move_rebuilt_checkpoint(&mut tx, subscriber.name(), at).await?;
            tx.commit().await?;
            slot.progress.send_replace(at);
            self.wake();
            return Ok(replayed);
        }
        subscriber.reset(&mut tx).await?;
        let mut at = FeedPosition::START;
        let mut replayed: u64 = 0;
        loop {
            let batch = read_batch(
                &mut tx,
                at,
                REBUILD_BATCH_SIZE,
                subscriber.aggregate_types(),
            )
            .await?;
            let Some(last) = batch.last else { break };
            at = last;
            if !batch.events.is_empty() {
                subscriber.apply(&mut tx, &batch.events).await?;
            }
            replayed = replayed.saturating_add(batch.read as u64);
        }
        move_rebuilt_checkpoint(&mut tx, subscriber.name(), at).await?;
        tx.commit().await?;
        slot.progress.send_replace(at);
        self.wake();
        Ok(replayed)
    }

    /// The rebuild of a subscriber with a [`Rebuild`]: the log is read on a second connection,
    /// [`REBUILD_READ_AHEAD_BATCHES`] ahead of `tx`, which does every write (crate::rebuild).
    /// Returns the position of the last event read and the number of events read.
    async fn rebuild_fresh(
        &self,
        tx: &mut PgConnection,
        subscriber: &dyn Subscriber,
        mut rebuilder: Box<dyn Rebuild>,
    ) -> Result<(FeedPosition, u64), FeedError> {
        let fresh = FreshTables::create(tx, subscriber.name(), rebuilder.tables()).await?;
        let (sender, mut batches) = mpsc::channel(REBUILD_READ_AHEAD_BATCHES);
        let reader = tokio::spawn(read_ahead(
            self.pool.clone(),
            subscriber.aggregate_types(),
            sender,
        ));
        let mut at = FeedPosition::START;
        let mut replayed: u64 = 0;
        let mut failure = None;
        while let Some(batch) = batches.recv().await {
            let applied = match batch {
                Ok(batch) => {
                    if let Some(last) = batch.last {
                        at = last;
                    }
                    replayed = replayed.saturating_add(batch.read as u64);
                    rebuilder
                        .apply(tx, &batch.events)
                        .await
                        .map_err(FeedError::from)
                }
                Err(err) => Err(FeedError::from(err)),
            };
            if let Err(err) = applied {
                failure = Some(err);
                break;
            }
        }
        // Dropping the receiver stops the reader at its next batch.
        drop(batches);
        reader.await.ok();
        if let Some(err) = failure {
            return Err(err);
        }
        rebuilder.finish(tx).await?;
        fresh.replace_live(tx).await?;
        Ok((at, replayed))
    }

    /// Applies everything currently below the fence for one subscriber, on the calling task, and
    /// returns its checkpoint. For tools and tests; the runners do the same continuously.
    pub async fn catch_up(&self, name: &str) -> Result<FeedPosition, FeedError> {
        let slot = self
            .slots
            .get(name)
            .ok_or_else(|| FeedError::UnknownSubscriber(name.to_owned()))?;
        let mut conn = self.pool.acquire().await?;
        ensure_checkpoint_row(&mut conn, slot.subscriber.name()).await?;
        let mut at = checkpoint(&self.pool, slot.subscriber.name()).await?;
        loop {
            let applied = apply_batch(&mut conn, slot.subscriber.as_ref(), &mut at).await?;
            if applied == 0 {
                break;
            }
        }
        slot.progress.send_replace(at);
        Ok(at)
    }

    /// Wakes this feed's runners that act on the types of every local append at once, and passes
    /// the news on to other processes through [`notify_other_processes`].
    async fn announce(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut appended = appends().signal.subscribe();
        let mut seen = HashMap::new();
        // Appends made before this feed started are not news: the runners read them on start.
        appended_types_since(&mut seen);
        // The NOTIFY goes out from a task of its own, so that waking this process's runners never
        // waits for the round trip of the previous one.
        let untold = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
        let told = Arc::new(tokio::sync::Notify::new());
        let notifier = tokio::spawn(notify_other_processes(
            self.pool.clone(),
            Arc::clone(&untold),
            Arc::clone(&told),
            shutdown.clone(),
        ));
        loop {
            tokio::select! {
                changed = appended.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                _ = shutdown.changed() => break,
            }
            appended.borrow_and_update();
            let kinds = appended_types_since(&mut seen);
            if kinds.is_empty() {
                continue;
            }
            self.wake_for_types(&kinds);
            untold
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .extend(kinds);
            told.notify_one();
        }
        notifier.await.ok();
    }

    async fn listen(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let listener = async {
                let mut listener = PgListener::connect_with(&self.pool).await?;
                listener.listen(NOTIFY_CHANNEL).await?;
                // Anything appended while we were not listening is picked up now.
                self.wake();
                loop {
                    let notification = listener.recv().await?;
                    let kinds: Vec<&str> = notification
                        .payload()
                        .split(',')
                        .filter(|kind| !kind.is_empty())
                        .collect();
                    if kinds.is_empty() {
                        self.wake();
                    } else {
                        self.wake_for_types(&kinds);
                    }
                }
                #[allow(unreachable_code)]
                Ok::<(), sqlx::Error>(())
            };
            tokio::select! {
                result = listener => {
                    if let Err(err) = result {
                        tracing::warn!(error = %err, "event listener failed; polling until it reconnects");
                    }
                    tokio::select! {
                        () = sleep(Duration::from_millis(ERROR_BACKOFF_MS)) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn run_subscriber(
        self: Arc<Self>,
        name: &'static str,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let Some(slot) = self.slots.get(name) else {
            return;
        };
        let options: PgConnectOptions = (*self.pool.connect_options()).clone();
        while !*shutdown.borrow() {
            let wait_ms = match self.run_while_locked(slot, &options, &mut shutdown).await {
                Ok(RunEnd::Shutdown) => break,
                Ok(RunEnd::LockHeldElsewhere) => STANDBY_RETRY_MS,
                Err(err) => {
                    tracing::error!(subscriber = name, error = %err, "subscriber failed; retrying");
                    ERROR_BACKOFF_MS
                }
            };
            slot.active.store(false, Ordering::Relaxed);
            tokio::select! {
                () = sleep(Duration::from_millis(wait_ms)) => {}
                _ = shutdown.changed() => {}
            }
        }
        slot.active.store(false, Ordering::Relaxed);
    }

    async fn run_while_locked(
        &self,
        slot: &Slot,
        options: &PgConnectOptions,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<RunEnd, FeedError> {
        let name = slot.subscriber.name();
        // A dedicated connection: the session lock lives exactly as long as it does.
        let mut conn = PgConnection::connect_with(options).await?;
        relax_commit(&mut conn).await?;
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(format!("stratus.subscriber.{name}"))
                .fetch_one(&mut conn)
                .await?;
        if !locked {
            conn.close().await.ok();
            return Ok(RunEnd::LockHeldElsewhere);
        }
        slot.active.store(true, Ordering::Relaxed);
        tracing::debug!(subscriber = name, "subscriber runner active");
        ensure_checkpoint_row(&mut conn, name).await?;
        let mut at = read_checkpoint(&mut conn, name).await?;
        slot.progress.send_replace(at);
        let mut wake = slot.wake.subscribe();
        let mut fence_wait_ms = FENCE_RETRY_MIN_MS;
        loop {
            if *shutdown.borrow() {
                conn.close().await.ok();
                return Ok(RunEnd::Shutdown);
            }
            wake.borrow_and_update();
            let applied = match apply_batch(&mut conn, slot.subscriber.as_ref(), &mut at).await {
                Err(FeedError::CheckpointMoved(_)) => {
                    at = read_checkpoint(&mut conn, name).await?;
                    slot.progress.send_replace(at);
                    continue;
                }
                other => other?,
            };
            if applied > 0 {
                slot.progress.send_replace(at);
                fence_wait_ms = FENCE_RETRY_MIN_MS;
                continue;
            }
            if committed_behind_fence(&mut conn, at).await? {
                // Committed events wait for an older transaction to finish; look again soon, or
                // at once when this process appends (often that transaction finishing).
                tokio::select! {
                    _ = wake.changed() => {}
                    () = sleep(Duration::from_millis(fence_wait_ms)) => {}
                }
                fence_wait_ms = (fence_wait_ms * 2).min(FENCE_RETRY_MAX_MS);
                continue;
            }
            fence_wait_ms = FENCE_RETRY_MIN_MS;
            tokio::select! {
                _ = wake.changed() => {}
                () = sleep(Duration::from_millis(POLL_INTERVAL_MS)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// Sends one NOTIFY naming the aggregate types appended since the last one, whenever there are
/// any (appends made while one is sent are named by the next).
async fn notify_other_processes(
    pool: PgPool,
    untold: Arc<Mutex<std::collections::BTreeSet<&'static str>>>,
    told: Arc<tokio::sync::Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = told.notified() => {}
            _ = shutdown.changed() => return,
        }
        let kinds: Vec<&str> = std::mem::take(
            &mut *untold
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
        .into_iter()
        .collect();
        if kinds.is_empty() {
            continue;
        }
        if let Err(err) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTIFY_CHANNEL)
            .bind(kinds.join(","))
            .execute(&pool)
            .await
        {
            tracing::warn!(error = %err, "could not tell other processes about new events");
        }
    }
}

enum RunEnd {
    Shutdown,
    LockHeldElsewhere,
}

/// Reads one fenced batch after `at` and applies it with the checkpoint move, in one transaction.
async fn apply_batch(
    conn: &mut PgConnection,
    subscriber: &dyn Subscriber,
    at: &mut FeedPosition,
) -> Result<usize, FeedError> {
    let mut tx = conn.begin().await?;
    let batch = read_batch(&mut tx, *at, BATCH_SIZE, subscriber.aggregate_types()).await?;
    let Some(next) = batch.last else {
        tx.rollback().await?;
        return Ok(0);
    };
    // The checkpoint moves first: a rebuild holding the checkpoint row stops this batch before it
    // touches the read model, whose tables the rebuild replaces at its end (crate::rebuild).
    let moved = sqlx::query(
        "UPDATE subscriber_checkpoints SET transaction_id = $2::text::xid8, global_position = $3, updated_at = now() \
         WHERE name = $1 AND transaction_id = $4::text::xid8 AND global_position = $5",
    )
    .bind(subscriber.name())
    .bind(next.transaction_id.to_string())
    .bind(next.global_position)
    .bind(at.transaction_id.to_string())
    .bind(at.global_position)
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() != 1 {
        tx.rollback().await?;
        return Err(FeedError::CheckpointMoved(subscriber.name()));
    }
    if !batch.events.is_empty() {
        subscriber.apply(&mut tx, &batch.events).await?;
    }
    tx.commit().await?;
    *at = next;
    Ok(batch.read)
}

/// A subscriber's batch commits without waiting for the WAL flush. Safe here: the read model (or
/// the reactor's outbox rows) and the checkpoint move in one transaction, so a crash can only
/// lose both together and the batch is applied again from the log, which stays durable (appends
/// keep `synchronous_commit = on`). Without it every batch of every subscriber waited for its own
/// fsync, and projection lag was the disk's flush latency times the number of subscribers.
async fn relax_commit(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET synchronous_commit = off")
        .execute(conn)
        .await
        .map(|_| ())
}

/// One fenced batch of the log.
struct Batch {
    /// The events of the batch the subscriber acts on, in feed order.
    events: Vec<StoredEvent>,
    /// How many events were read, including those passed over.
    read: usize,
    /// The position of the last event read: where the checkpoint moves (`None`: nothing new).
    last: Option<FeedPosition>,
}

/// The rows of the fenced batch after `after` with `columns` (which take the `types` as `$4` when
/// they filter by aggregate type).
async fn fetch_fenced(
    conn: &mut PgConnection,
    columns: &str,
    after: FeedPosition,
    limit: i64,
    types: Option<&[&str]>,
) -> Result<Vec<sqlx::postgres::PgRow>, sqlx::Error> {
    let sql = FENCED_BATCH
        .replace("{cols}", columns)
        .replace("{order}", FEED_ORDER);
    let mut query = sqlx::query(&sql)
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(limit);
    if let Some(types) = types {
        query = query.bind(types);
    }
    query.fetch_all(&mut *conn).await
}

/// Reads the fenced batch after `after`; with `types`, the events of other aggregate types are
/// passed over (their position only) instead of being decoded.
async fn read_batch(
    conn: &mut PgConnection,
    after: FeedPosition,
    limit: i64,
    types: Option<&[&str]>,
) -> Result<Batch, sqlx::Error> {
    let columns = match types {
        Some(_) => FILTERED_EVENT_COLUMNS,
        None => EVENT_COLUMNS,
    };
    let rows = fetch_fenced(conn, columns, after, limit, types).await?;
    let mut events = Vec::with_capacity(rows.len());
    let mut last = None;
    for row in &rows {
        let wanted = match types {
            None => true,
            Some(types) => {
                let kind: &str = row.try_get("aggregate_type")?;
                types.contains(&kind)
            }
        };
        if wanted {
            let event = StoredEvent::from_row(row)?;
            last = Some(event.position);
            events.push(event);
        } else {
            last = Some(position_of_row(row)?);
        }
    }
    Ok(Batch {
        events,
        read: rows.len(),
        last,
    })
}

/// Moves the checkpoint of a rebuilt subscriber to `at`, unconditionally (its row is locked).
async fn move_rebuilt_checkpoint(
    tx: &mut PgConnection,
    name: &str,
    at: FeedPosition,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE subscriber_checkpoints SET transaction_id = $2::text::xid8, global_position = $3, \
         updated_at = now() WHERE name = $1",
    )
    .bind(name)
    .bind(at.transaction_id.to_string())
    .bind(at.global_position)
    .execute(tx)
    .await?;
    Ok(())
}

/// One fenced batch of a rebuild's replay.
struct ReplayBatch {
    /// The events of the batch the subscriber acts on, in feed order, payloads as text.
    events: Vec<ReplayedEvent>,
    /// How many events were read, including those passed over.
    read: usize,
    /// The position of the last event read (`None`: nothing new).
    last: Option<FeedPosition>,
}

/// Reads the whole log below the fence on a connection of its own and sends it in batches of
/// [`REBUILD_BATCH_SIZE`] until the log is read, a read fails or the receiver is gone. The
/// rebuild's transaction holds a transaction id since it locked the checkpoint row, so the fence
/// never passes it: the reader sees the same events the rebuild's own connection would.
async fn read_ahead(
    pool: PgPool,
    types: Option<&'static [&'static str]>,
    batches: mpsc::Sender<Result<ReplayBatch, sqlx::Error>>,
) {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(err) => {
            batches.send(Err(err)).await.ok();
            return;
        }
    };
    let mut at = FeedPosition::START;
    loop {
        let batch = read_replay_batch(&mut conn, at, REBUILD_BATCH_SIZE, types).await;
        let last = match &batch {
            Ok(batch) => batch.last,
            Err(_) => None,
        };
        if batches.send(batch).await.is_err() {
            return;
        }
        match last {
            Some(last) => at = last,
            None => return,
        }
    }
}

/// [`read_batch`] for a rebuild: payloads as JSON text, no metadata.
async fn read_replay_batch(
    conn: &mut PgConnection,
    after: FeedPosition,
    limit: i64,
    types: Option<&[&str]>,
) -> Result<ReplayBatch, sqlx::Error> {
    let columns = match types {
        Some(_) => REPLAY_FILTERED_COLUMNS,
        None => REPLAY_COLUMNS,
    };
    let rows = fetch_fenced(conn, columns, after, limit, types).await?;
    let mut events = Vec::with_capacity(rows.len());
    let mut last = None;
    for row in &rows {
        let position = position_of_row(row)?;
        last = Some(position);
        let payload: Option<String> = row.try_get("payload")?;
        let Some(payload) = payload else { continue };
        let event = StoredEvent {
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            sequence: row.try_get("sequence")?,
            event_type: row.try_get("event_type")?,
            event_version: row.try_get("event_version")?,
            payload: serde_json::Value::Null,
            metadata: serde_json::Value::Null,
            position,
            recorded_at: row.try_get("recorded_at")?,
        };
        events.push(ReplayedEvent { event, payload });
    }
    Ok(ReplayBatch {
        events,
        read: rows.len(),
        last,
    })
}

async fn committed_behind_fence(
    conn: &mut PgConnection,
    after: FeedPosition,
) -> Result<bool, sqlx::Error> {
    // Compares the newest event with `after` through one backward step of the feed-order index.
    // (An `EXISTS (... WHERE (transaction_id, global_position) > ...)` gets a generic plan that
    // scans the whole table from its start: it grew with the log and dominated under load.)
    let newer: Option<bool> = sqlx::query_scalar(
        "SELECT (transaction_id, global_position) > ($1::text::xid8, $2) FROM events \
         ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
    )
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .fetch_optional(conn)
    .await?;
    Ok(newer.unwrap_or(false))
}

async fn ensure_checkpoint_row(conn: &mut PgConnection, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO subscriber_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .execute(conn)
    .await?;
    Ok(())
}

async fn read_checkpoint(conn: &mut PgConnection, name: &str) -> Result<FeedPosition, FeedError> {
    let row = sqlx::query(
        "SELECT transaction_id::text AS transaction_id, global_position FROM subscriber_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(conn)
    .await?;
    position_of(row)
}

fn position_of(row: Option<sqlx::postgres::PgRow>) -> Result<FeedPosition, FeedError> {
    let Some(row) = row else {
        return Ok(FeedPosition::START);
    };
    let tx: String = row.try_get("transaction_id")?;
    let pos: i64 = row.try_get("global_position")?;
    FeedPosition::from_db(&tx, pos)
        .map_err(|e| FeedError::Database(sqlx::Error::Decode(Box::new(e))))
}

/// The checkpoint of a subscriber as stored (`START` if it has never run).
pub async fn checkpoint(pool: &PgPool, name: &str) -> Result<FeedPosition, FeedError> {
    let row = sqlx::query(
        "SELECT transaction_id::text AS transaction_id, global_position FROM subscriber_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await?;
    position_of(row)
}

/// The feed position of the newest event in the log.
pub async fn head(pool: &PgPool) -> Result<FeedPosition, FeedError> {
    let row = sqlx::query(
        "SELECT transaction_id::text AS transaction_id, global_position FROM events \
         ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    position_of(row)
}
