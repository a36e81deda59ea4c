//! The consumer side: one Kafka consumer polled on a dedicated thread, one worker task per
//! assigned partition.
//!
//! Ordering: a partition's records go, in offset order, through one FIFO channel to one
//! worker; partitions (and so doctors on different partitions) progress concurrently.
//!
//! Batches: the worker takes what is queued for its partition (up to `processor.batch_max`,
//! waiting up to `processor.batch_wait_ms` for more, by default not at all) and hands it to
//! the handler as one batch, in offset order. Under
//! light load a batch is one record; as load grows, records queue while a batch is decided
//! and the next batch is larger, so the cost per record falls as the rate rises.
//!
//! Delays: a delay-topic record that is not due yet is not held by anyone: its partition is
//! paused and rewound to it, and resumed when it is due. Other partitions keep flowing.
//!
//! Backpressure: when a worker's channel is full its partition is paused and rewound the same
//! way, and resumed when the worker has caught up.
//!
//! Rebalances: before partitions are revoked the polling thread waits (up to the drain
//! deadline) for their workers to finish the record in hand and stops them; records they had
//! not started are not stored and so are delivered to the next owner.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use rdkafka::{
    ClientContext, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance},
    message::OwnedMessage,
    statistics::Statistics,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::retry::{self, Role, Topology};

/// Records buffered per partition before the partition is paused.
const CHANNEL_CAPACITY: usize = 256;

pub type Key = (String, i32);

/// How a worker gathers its partition's records into batches.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Most records taken at once.
    pub max: usize,
    /// How long to wait for more when fewer are queued.
    pub wait: Duration,
}

/// What the poller and the rebalance callback share about one partition's worker.
pub struct WorkerShared {
    /// Held by the worker while it handles a batch.
    pub busy: tokio::sync::Mutex<()>,
    /// Set when the partition is revoked or the processor stops: the worker exits before its
    /// next record.
    pub stopped: AtomicBool,
}

struct WorkerHandle {
    tx: mpsc::Sender<OwnedMessage>,
    shared: Arc<WorkerShared>,
}

/// Consumer context: drains revoked partitions and exports consumer lag.
pub struct ProcessorContext {
    workers: Arc<Mutex<HashMap<Key, WorkerHandle>>>,
    drain: Duration,
    group: String,
}

impl ProcessorContext {
    pub fn new(drain: Duration, group: String) -> Self {
        Self {
            workers: Arc::default(),
            drain,
            group,
        }
    }

    /// Stops the workers of `keys`, waiting for the records in hand.
    fn stop_workers(&self, keys: impl Iterator<Item = Key>) {
        let handles: Vec<(Key, WorkerHandle)> = {
            let mut workers = self.workers.lock().expect("workers lock");
            keys.filter_map(|k| workers.remove(&k).map(|h| (k, h)))
                .collect()
        };
        for (_, handle) in &handles {
            handle.shared.stopped.store(true, Ordering::SeqCst);
        }
        let deadline = Instant::now() + self.drain;
        for ((topic, partition), handle) in handles {
            loop {
                if handle.shared.busy.try_lock().is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    tracing::warn!(
                        topic,
                        partition,
                        "drain deadline passed with a record in hand"
                    );
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

impl ClientContext for ProcessorContext {
    fn stats(&self, statistics: Statistics) {
        citaflow_platform::kafka::export_lag(&self.group, statistics);
    }
}

impl ConsumerContext for ProcessorContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let keys: Vec<Key> = list
                .elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition()))
                .collect();
            tracing::info!(partitions = keys.len(), "partitions revoked, draining");
            self.stop_workers(keys.into_iter());
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            tracing::info!(partitions = list.count(), "partitions assigned");
        }
    }
}

pub type ProcessorConsumer = BaseConsumer<ProcessorContext>;

/// Something that handles one partition's records in order.
pub trait PartitionHandler: Send + Sync + 'static {
    /// Called before the first record of partition number `partition` (in any topic) is
    /// handed to a worker after it was assigned here.
    fn assigned(&self, _partition: i32) -> impl std::future::Future<Output = ()> + Send {
        async {}
    }

    /// Handles one record. Returns whether its offset may be stored.
    fn handle(
        &self,
        message: OwnedMessage,
        stop: &CancellationToken,
    ) -> impl std::future::Future<Output = bool> + Send;

    /// Handles records of one partition in offset order. Returns how many of them, from the
    /// first, are done (their offsets may be stored); the rest, if any, are left to
    /// redelivery.
    fn handle_batch(
        &self,
        messages: Vec<OwnedMessage>,
        stop: &CancellationToken,
    ) -> impl std::future::Future<Output = usize> + Send {
        handle_each(self, messages, stop)
    }
}

/// Handles `messages` one at a time with [`PartitionHandler::handle`], in order, until one is
/// not done. Answers how many are done.
pub async fn handle_each<H: PartitionHandler + ?Sized>(
    handler: &H,
    messages: impl IntoIterator<Item = OwnedMessage>,
    stop: &CancellationToken,
) -> usize {
    let mut done = 0;
    for message in messages {
        if !handler.handle(message, stop).await {
            break;
        }
        done += 1;
    }
    done
}

/// Runs the polling loop on the current (dedicated) thread until `shutdown`, then drains.
pub fn run<H: PartitionHandler>(
    consumer: Arc<ProcessorConsumer>,
    topology: Topology,
    handler: Arc<H>,
    batch: Batching,
    runtime: tokio::runtime::Handle,
    shutdown: CancellationToken,
) {
    let workers = consumer.context().workers.clone();
    // Partitions paused until an instant: (delay topic not due | channel full).
    let mut paused: HashMap<Key, Option<Instant>> = HashMap::new();
    let worker_stop = CancellationToken::new();

    while !shutdown.is_cancelled() {
        resume_ready(&consumer, &workers, &mut paused);
        let Some(result) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = match result {
            Ok(m) => m.detach(),
            Err(err) => {
                tracing::warn!(error = %err, "consumer error");
                continue;
            }
        };
        let key = (message.topic().to_owned(), message.partition());

        // A delay-topic record waits, without holding anyone, until it is due.
        if matches!(topology.role(message.topic()), Some(Role::Retry(_))) {
            let due = retry::get_i64(message.headers(), retry::header::DUE_AT).unwrap_or(0);
            let wait = due - retry::now_ms();
            if wait > 0 {
                rewind(&consumer, &key, message.offset());
                paused.insert(
                    key,
                    Some(Instant::now() + Duration::from_millis(wait as u64)),
                );
                continue;
            }
        }

        // A partition number new to this process (start, or assigned by a rebalance): let the
        // handler rebuild what it needs first (parking, from the delay topics).
        let first_of_partition = {
            let map = workers.lock().expect("workers lock");
            !map.keys().any(|(_, partition)| *partition == key.1)
        };
        if first_of_partition {
            runtime.block_on(handler.assigned(key.1));
        }
        let tx = {
            let mut map = workers.lock().expect("workers lock");
            let handle = map.entry(key.clone()).or_insert_with(|| {
                spawn_worker(
                    &runtime,
                    consumer.clone(),
                    handler.clone(),
                    key.clone(),
                    batch,
                    worker_stop.clone(),
                )
            });
            handle.tx.clone()
        };
        match tx.try_send(message) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(message)) => {
                rewind(&consumer, &key, message.offset());
                paused.insert(key, None);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // The worker stopped (revoked); the record will be delivered to its next owner.
            }
        }
    }

    // Stop: let the records in hand finish, store nothing more, commit what is stored.
    tracing::info!("stopping: draining partition workers");
    worker_stop.cancel();
    let keys: Vec<Key> = workers
        .lock()
        .expect("workers lock")
        .keys()
        .cloned()
        .collect();
    consumer.context().stop_workers(keys.into_iter());
    if let Err(err) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::debug!(error = %err, "final commit");
    }
    consumer.unsubscribe();
}

fn spawn_worker<H: PartitionHandler>(
    runtime: &tokio::runtime::Handle,
    consumer: Arc<ProcessorConsumer>,
    handler: Arc<H>,
    key: Key,
    batching: Batching,
    stop: CancellationToken,
) -> WorkerHandle {
    let (tx, mut rx) = mpsc::channel::<OwnedMessage>(CHANNEL_CAPACITY);
    let shared = Arc::new(WorkerShared {
        busy: tokio::sync::Mutex::new(()),
        stopped: AtomicBool::new(false),
    });
    let worker_shared = shared.clone();
    runtime.spawn(async move {
        let (topic, partition) = key;
        let max = batching.max;
        let mut batch = Vec::with_capacity(max);
        while rx.recv_many(&mut batch, max).await > 0 {
            if !batching.wait.is_zero() {
                let until = tokio::time::Instant::now() + batching.wait;
                while batch.len() < max {
                    let room = max - batch.len();
                    let more = tokio::time::timeout_at(until, rx.recv_many(&mut batch, room));
                    if !matches!(more.await, Ok(n) if n > 0) {
                        break;
                    }
                }
            }
            let _busy = worker_shared.busy.lock().await;
            if worker_shared.stopped.load(Ordering::SeqCst) {
                break;
            }
            let offsets: Vec<i64> = batch.iter().map(Message::offset).collect();
            let done = handler
                .handle_batch(std::mem::take(&mut batch), &stop)
                .await;
            // Stored only now: the records' outcomes are durable (see the handler). Storing
            // the last done offset covers those before it.
            if let Some(offset) = done.checked_sub(1).map(|last| offsets[last])
                && let Err(err) = consumer.store_offset(&topic, partition, offset)
            {
                tracing::debug!(error = %err, topic, partition, "offset not stored (revoked?)");
            }
            if done < offsets.len() {
                // Not done (stopping mid-retry): leave it, and what follows, to redelivery.
                break;
            }
        }
    });
    WorkerHandle { tx, shared }
}

/// Pauses a partition and rewinds it so `offset` is fetched again on resume.
fn rewind(consumer: &ProcessorConsumer, key: &Key, offset: i64) {
    let mut list = TopicPartitionList::new();
    list.add_partition(&key.0, key.1);
    if let Err(err) = consumer.pause(&list) {
        tracing::warn!(error = %err, "pause failed");
    }
    if let Err(err) = consumer.seek(
        &key.0,
        key.1,
        Offset::Offset(offset),
        Duration::from_secs(5),
    ) {
        tracing::warn!(error = %err, topic = key.0, partition = key.1, "seek failed");
    }
}

/// Resumes partitions whose delay passed or whose worker caught up.
fn resume_ready(
    consumer: &ProcessorConsumer,
    workers: &Mutex<HashMap<Key, WorkerHandle>>,
    paused: &mut HashMap<Key, Option<Instant>>,
) {
    if paused.is_empty() {
        return;
    }
    let now = Instant::now();
    let mut ready: HashSet<Key> = HashSet::new();
    {
        let map = workers.lock().expect("workers lock");
        for (key, until) in paused.iter() {
            let resume = match until {
                Some(at) => *at <= now,
                None => map
                    .get(key)
                    .is_none_or(|h| h.tx.capacity() > CHANNEL_CAPACITY / 2),
            };
            if resume {
                ready.insert(key.clone());
            }
        }
    }
    if ready.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for key in &ready {
        list.add_partition(&key.0, key.1);
        paused.remove(key);
    }
    if let Err(err) = consumer.resume(&list) {
        tracing::warn!(error = %err, "resume failed");
    }
}
