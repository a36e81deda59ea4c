//! Welcome emails (email channel only): the outbox `welcome_emails`, written by ingest-api in
//! the transaction that signs a patient up (`migrations/0010_welcome_emails.sql`).
//!
//! The loop wakes on the API's notice (`citaflow_welcome`) and sweeps every
//! [`SWEEP_EVERY`] besides, so a notice missed while the notifier was down or its listener
//! reconnecting only delays the email. Each pending row is claimed with `FOR UPDATE SKIP
//! LOCKED` and kept locked while its email is sent, so two replicas never send the same one;
//! the email's Message-ID comes from the patient id and is first looked up in the mail
//! system's log (an earlier attempt may have delivered before its process died): sent once.
//! A refusal for good closes the row `failed`; anything else leaves it pending for the next
//! sweep.

use std::time::Duration;

use citaflow_platform::db::WELCOME_CHANNEL;
use sqlx::{PgPool, postgres::PgListener};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    channels::{EmailChannel, SendError},
    templates::{self, Lang},
};

/// How often pending rows are looked for without a notice.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);

#[derive(sqlx::FromRow)]
struct Pending {
    patient_id: Uuid,
    name: String,
    email: Option<String>,
    language: Option<String>,
}

/// Sends welcome emails until `shutdown`.
pub async fn run(
    pool: PgPool,
    email: EmailChannel,
    default_lang: Lang,
    shutdown: CancellationToken,
) {
    let mut listener: Option<PgListener> = None;
    while !shutdown.is_cancelled() {
        loop {
            match send_next(&pool, &email, default_lang).await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "welcome emails: could not send; retrying");
                    break;
                }
            }
        }
        if listener.is_none() {
            listener = match PgListener::connect_with(&pool).await {
                Ok(mut l) => l.listen(WELCOME_CHANNEL).await.is_ok().then_some(l),
                Err(_) => None,
            };
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            notice = async {
                match listener.as_mut() {
                    Some(l) => l.recv().await.map(|_| ()),
                    None => std::future::pending().await,
                }
            } => if notice.is_err() { listener = None },
        }
    }
}

/// Sends one pending welcome email; `Ok(false)` when there is none.
async fn send_next(
    pool: &PgPool,
    email: &EmailChannel,
    default_lang: Lang,
) -> anyhow::Result<bool> {
    let mut tx = pool.begin().await?;
    let Some(row): Option<Pending> = sqlx::query_as(
        "SELECT w.patient_id, p.name, p.email, p.language
           FROM welcome_emails w JOIN patients p ON p.id = w.patient_id
          WHERE w.status = 'pending'
          ORDER BY w.created_at
          LIMIT 1
            FOR UPDATE OF w SKIP LOCKED",
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(false);
    };
    let lang = row
        .language
        .as_deref()
        .and_then(Lang::parse)
        .unwrap_or(default_lang);
    let outcome = match row.email.as_deref() {
        None => Err(SendError::Permanent("the patient has no email".into())),
        Some(to) => {
            // An earlier attempt may have delivered before its process died (welcome emails
            // are few: one look-up each).
            match email.find_sent(row.patient_id).await? {
                Some(message_id) => Ok(message_id),
                None => {
                    let message = templates::welcome(lang, &row.name);
                    email.send(row.patient_id, to, &row.name, &message).await
                }
            }
        }
    };
    let (status, detail) = match outcome {
        Ok(message_id) => ("sent", message_id),
        Err(SendError::Permanent(why)) => ("failed", why),
        Err(other) => return Err(other.into()),
    };
    sqlx::query(
        "UPDATE welcome_emails SET status = $2, detail = $3, attempts = attempts + 1, closed_at = now()
          WHERE patient_id = $1",
    )
    .bind(row.patient_id)
    .bind(status)
    .bind(&detail)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics::counter!("citaflow_welcome_emails_total", "outcome" => status).increment(1);
    tracing::info!(patient_id = %row.patient_id, status, "welcome email");
    Ok(true)
}
