//! Fast, honest refusals while Kafka is unreachable. A produce waits up to the producer's
//! message timeout before it fails, so without this every booking request held its connection
//! for seconds during an outage. A probe asks the cluster for metadata every
//! [`PROBE_EVERY`]; while it fails, booking commands are refused at once (503 with
//! `Retry-After`, before any row is written), and produces already waiting are answered 503 as
//! soon as the outage is seen (their rows closed `not_accepted`; a command that still reaches
//! Kafka later finds its booking decided and changes nothing).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use rdkafka::producer::FutureProducer;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often the cluster is asked; also about how long a request may wait for a produce
/// once the broker has gone away.
pub const PROBE_EVERY: Duration = Duration::from_millis(250);
/// How long one metadata request may take before the cluster counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_millis(750);

/// What the probe last saw.
#[derive(Default)]
pub struct BrokerHealth {
    down: AtomicBool,
    went_down: Notify,
}

impl BrokerHealth {
    /// Starts the probe; it runs until `shutdown`. The broker counts as up until the first
    /// probe says otherwise.
    pub fn spawn(producer: FutureProducer, shutdown: CancellationToken) -> Arc<Self> {
        let health = Arc::new(Self::default());
        let probe = health.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let up = citaflow_platform::kafka::is_ready(&producer, PROBE_TIMEOUT).await;
                probe.set(up);
            }
        });
        health
    }

    fn set(&self, up: bool) {
        let was_down = self.down.swap(!up, Ordering::SeqCst);
        if !up && !was_down {
            tracing::warn!("Kafka unreachable: booking commands are refused until it answers");
            self.went_down.notify_waiters();
        } else if up && was_down {
            tracing::info!("Kafka reachable again");
        }
    }

    pub fn is_up(&self) -> bool {
        !self.down.load(Ordering::SeqCst)
    }

    /// Completes when the probe next sees the broker go away; it counts from its creation,
    /// before it is first polled.
    pub fn went_down(&self) -> tokio::sync::futures::Notified<'_> {
        self.went_down.notified()
    }
}
