//! PostgreSQL pool and the schema migrations (one migration set for the whole platform).

use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::{
    PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::settings::DatabaseSettings;

/// The platform's migrations, embedded at build time from `migrations/`.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// A lazily connecting pool: services start (and report not-ready) while the database is down.
pub fn pool(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = settings
        .url
        .expose_secret()
        .parse()
        .context("database.url is not a valid PostgreSQL URL")?;
    let options = options.options([(
        "statement_timeout",
        settings.statement_timeout_ms.to_string(),
    )]);
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        .connect_lazy_with(options))
}

/// Applies pending migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("running database migrations")?;
    Ok(())
}

/// Whether the database answers a trivial query.
pub async fn is_ready(pool: &PgPool) -> bool {
    sqlx::query("SELECT 1").execute(pool).await.is_ok()
}

/// Whether an error is worth retrying later (connection trouble, timeouts, serialization
/// failures, admin shutdown) rather than a verdict on the data.
pub fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // 08: connection exception; 40001/40P01: serialization failure/deadlock;
            // 53: insufficient resources; 57: operator intervention (e.g. shutdown, query
            // cancelled by statement_timeout); 58: system error.
            code.starts_with("08")
                || code == "40001"
                || code == "40P01"
                || code.starts_with("53")
                || code.starts_with("57")
                || code.starts_with("58")
        }
        _ => false,
    }
}

/// The notice channel on which ingest-api announces a new welcome email (the outbox row of a
/// patient who signed up, `welcome_emails`) to the email notifier; the payload is the patient
/// id. Delivered on commit.
pub const WELCOME_CHANNEL: &str = "citaflow_welcome";
