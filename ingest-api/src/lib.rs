//! ingest-api: authenticates clients, manages the clinic directory, validates booking requests
//! and publishes them as Avro commands to Kafka, and answers queries from PostgreSQL.

pub mod broker;
pub mod domain;
pub mod http;
pub mod login_limiter;
pub mod outcomes;
pub mod passwords;
pub mod rate_limiter;
pub mod state;
pub mod tokens;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use citaflow_platform::{Settings, db, kafka, ops};
use citaflow_schemas::{AvroCodec, RegistryClient};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    login_limiter::LoginLimiter,
    rate_limiter::RateLimiter,
    state::AppState,
    tokens::{Role, TokenKeys},
};

/// A built, bound, not yet serving ingest-api.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    port: u16,
    /// The ops listener (`/metrics`, `/health/*`), apart from the public API port.
    ops_listener: TcpListener,
    ops_router: axum::Router,
    ops_port: u16,
    /// Stops background tasks (the outcome listener) when the server stops.
    background: CancellationToken,
}

impl Application {
    /// Connects to the dependencies (lazily: the service starts and reports not-ready while
    /// they are down) and binds the listener, so `port` is known before serving (port 0 picks
    /// a free one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let key = settings.auth.signing_key()?;
        let tokens = Arc::new(TokenKeys::new(
            key,
            &settings.auth.issuer,
            &settings.auth.audience,
            settings.auth.token_ttl_secs,
        ));
        // 5 failures per username or 50 per address within 15 minutes, then 429.
        let login_limiter = Arc::new(LoginLimiter::new(Duration::from_secs(15 * 60), 5, 50));
        // Every sign-up attempt counts against its address for an hour.
        let signup_limiter = Arc::new(LoginLimiter::new(
            Duration::from_secs(3600),
            usize::MAX,
            settings.api.signups_per_address_per_hour as usize,
        ));
        let booking_limiter = Arc::new(RateLimiter::new(
            settings.api.booking_rate_per_sec,
            settings.api.booking_rate_burst,
        ));
        let pool = db::pool(&settings.database)?;
        let producer = kafka::producer_with_linger(&settings.kafka, "ingest-api", 0)?;
        let registry = RegistryClient::new(
            &settings.registry.url,
            Duration::from_millis(settings.registry.timeout_ms),
        )?;
        let commands = AvroCodec::new(registry, &settings.topics.requests);
        let background = CancellationToken::new();
        let outcomes = outcomes::Outcomes::spawn(pool.clone(), background.clone());
        let broker = broker::BrokerHealth::spawn(producer.clone(), background.clone());
        let state = AppState {
            settings: settings.clone(),
            pool: pool.clone(),
            producer: producer.clone(),
            broker: broker.clone(),
            commands,
            outcomes,
            tokens,
            login_limiter,
            signup_limiter,
            booking_limiter,
        };

        // Kafka's readiness is what the broker probe last saw: no second metadata request.
        let readiness = ops::Readiness::postgres(pool).with("kafka", move || {
            let up = broker.is_up();
            async move { up }
        });
        let ops_router = http::ops_router(readiness.clone());
        let router = http::router(state, readiness);

        let (listener, port) = ops::bind(&settings.http).await?;
        let (ops_listener, ops_port) = ops::bind(&settings.http.ops())
            .await
            .context("binding the ops listener (http.ops_port)")?;
        Ok(Self {
            listener,
            router,
            port,
            ops_listener,
            ops_router,
            ops_port,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Port of the ops listener (`/metrics`).
    pub fn ops_port(&self) -> u16 {
        self.ops_port
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight requests finish.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(
            port = self.port,
            ops_port = self.ops_port,
            "ingest-api listening"
        );
        let service = self
            .router
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let api = axum::serve(self.listener, service)
            .with_graceful_shutdown({
                let shutdown = shutdown.clone();
                async move { shutdown.cancelled().await }
            })
            .into_future();
        // The ops listener stops with the API, so metrics cover the drain.
        let ops = axum::serve(self.ops_listener, self.ops_router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .into_future();
        let (api, ops) = tokio::join!(api, ops);
        self.background.cancel();
        api.context("serving HTTP")?;
        ops.context("serving the ops listener")
    }
}

/// Creates an admin user, or sets the password of an existing one (`ingest-api create-admin`):
/// the way to a first admin on a fresh install. Returns whether the user was created.
pub async fn create_admin(
    settings: &Settings,
    username: &str,
    password: String,
) -> anyhow::Result<bool> {
    if let Some(why) = passwords::weakness(&password) {
        anyhow::bail!("the password {why}");
    }
    let mut errors = Vec::new();
    let username = http::users::username(username, &mut errors)
        .ok_or_else(|| anyhow::anyhow!("invalid username: {}", errors[0].message))?;
    let pool = db::pool(&settings.database)?;
    let hash = passwords::hash(password)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let existing: Option<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT id, role FROM users WHERE lower(username) = $1")
            .bind(&username)
            .fetch_optional(&pool)
            .await?;
    match existing {
        Some((_, role)) if role != Role::Admin.as_str() => {
            anyhow::bail!("user {username} exists with role {role}, not admin")
        }
        Some((id, _)) => {
            sqlx::query("UPDATE users SET password_hash = $2, active = true, token_generation = token_generation + 1, updated_at = now() WHERE id = $1")
                .bind(id)
                .bind(hash)
                .execute(&pool)
                .await?;
            Ok(false)
        }
        None => {
            sqlx::query("INSERT INTO users (id, username, password_hash, role) VALUES ($1, $2, $3, 'admin')")
                .bind(uuid::Uuid::new_v4())
                .bind(&username)
                .bind(hash)
                .execute(&pool)
                .await?;
            Ok(true)
        }
    }
}

/// Applies the database migrations and exits (`ingest-api migrate`).
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let pool = db::pool(&settings.database)?;
    db::migrate(&pool).await
}
