//! Delivery channels: email ([`EmailChannel`], over its own SMTP connection) and SMS
//! ([`SmsChannel`], a Twilio-compatible HTTP API).
//!
//! Each failure says whether trying again may help and, if so, whether the provider may
//! already have taken the message (then a retry could deliver it twice, and the worker takes
//! care: it first looks in the provider's record of what it sent, the mail system's message
//! log (`smtp.message_log_url`) for email and the Messages API for SMS; an email that cannot
//! be looked up goes again with the same `Message-ID`). Error texts are redacted: providers
//! echo addresses and numbers.

mod email;
mod provider;
mod sms;
mod smtp;

pub use email::{EmailChannel, message_id};
pub use sms::SmsChannel;

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Never going to work (invalid address, refused by the provider): recorded `failed`.
    #[error("permanent: {0}")]
    Permanent(String),
    /// Try again later; the provider did not take the message and nothing says it is this
    /// message's fault (connection refused or not ready, SMTP `421` service closing, HTTP 429
    /// or 5xx): retried until the provider is back, however long that takes.
    #[error("not sent: {0}")]
    NotSent(String),
    /// Try again later, but not forever: the SMTP server answered and refused this message for
    /// now (a 4xx reply other than `421` to `MAIL FROM`, `RCPT TO` or the message, such as
    /// `450 4.2.1 Mailbox busy`). Nothing was taken. The worker gives up after
    /// `notifier.deferred_give_up_secs` from the first attempt and records it `failed`.
    #[error("deferred: {0}")]
    Deferred(String),
    /// Try again later; the provider may have taken the message (connection lost or timed out
    /// once the message was on its way).
    #[error("in doubt: {0}")]
    InDoubt(String),
}
