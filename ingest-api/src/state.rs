//! What every handler can reach.

use std::sync::Arc;

use citaflow_platform::Settings;
use citaflow_schemas::{AvroCodec, BookingCommand};

use crate::{
    broker::BrokerHealth, login_limiter::LoginLimiter, outcomes::Outcomes,
    rate_limiter::RateLimiter, tokens::TokenKeys,
};
use rdkafka::producer::FutureProducer;
use sqlx::PgPool;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub pool: PgPool,
    pub producer: FutureProducer,
    /// Whether Kafka answers, as a probe last saw it (refuse fast while it does not).
    pub broker: Arc<BrokerHealth>,
    pub commands: AvroCodec<BookingCommand>,
    pub outcomes: Arc<Outcomes>,
    pub tokens: Arc<TokenKeys>,
    pub login_limiter: Arc<LoginLimiter>,
    /// Patient sign-ups per address.
    pub signup_limiter: Arc<LoginLimiter>,
    /// Booking commands per user (create, cancel, reschedule).
    pub booking_limiter: Arc<RateLimiter>,
}
