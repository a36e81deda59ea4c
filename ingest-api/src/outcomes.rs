//! Wakes requests that wait for a booking's outcome (`Prefer: wait=N`).
//!
//! booking-processor announces each decided booking on
//! [`DECIDED_CHANNEL`](citaflow_booking_store::DECIDED_CHANNEL) in the transaction that decides it; one listener connection per API process fans the notices out to
//! the waiting requests. Waiters also re-read the booking periodically, so a lost connection
//! only makes them slower, never wrong.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use citaflow_booking_store as store;
use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Default)]
pub struct Outcomes {
    waiters: Mutex<HashMap<Uuid, Vec<oneshot::Sender<()>>>>,
}

impl Outcomes {
    /// Starts the listener; it reconnects until `shutdown`.
    pub fn spawn(pool: PgPool, shutdown: CancellationToken) -> Arc<Self> {
        let outcomes = Arc::new(Self::default());
        let listener = outcomes.clone();
        tokio::spawn(async move {
            while !shutdown.is_cancelled() {
                if let Err(err) = listener.listen(&pool, &shutdown).await {
                    tracing::debug!(error = %err, "outcome listener interrupted; reconnecting");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
        outcomes
    }

    async fn listen(&self, pool: &PgPool, shutdown: &CancellationToken) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(store::DECIDED_CHANNEL).await?;
        loop {
            let notification = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                n = listener.recv() => n?,
            };
            if let Some(id) = store::decided_booking(notification.payload()) {
                self.wake(id);
            }
        }
    }

    fn wake(&self, id: Uuid) {
        let senders = self.waiters.lock().expect("waiters lock").remove(&id);
        for sender in senders.into_iter().flatten() {
            let _ = sender.send(());
        }
    }

    /// A receiver completed when `id` is next decided. Subscribe before reading the booking,
    /// so a decision between the read and the wait is not missed.
    pub fn subscribe(self: &Arc<Self>, id: Uuid) -> Subscription {
        let (tx, rx) = oneshot::channel();
        let mut waiters = self.waiters.lock().expect("waiters lock");
        let list = waiters.entry(id).or_default();
        list.retain(|s| !s.is_closed());
        list.push(tx);
        Subscription {
            rx: Some(rx),
            id,
            outcomes: self.clone(),
        }
    }
}

/// A pending wake-up; dropping it forgets the waiter.
pub struct Subscription {
    rx: Option<oneshot::Receiver<()>>,
    id: Uuid,
    outcomes: Arc<Outcomes>,
}

impl Subscription {
    /// Waits for the wake-up or `timeout`, whichever comes first.
    pub async fn wait(mut self, timeout: Duration) {
        if let Some(rx) = self.rx.take() {
            let _ = tokio::time::timeout(timeout, rx).await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.rx.take());
        let mut waiters = self.outcomes.waiters.lock().expect("waiters lock");
        if let Some(list) = waiters.get_mut(&self.id) {
            list.retain(|s| !s.is_closed());
            if list.is_empty() {
                waiters.remove(&self.id);
            }
        }
    }
}
