//! Layered configuration: built-in defaults → optional TOML file (`CITAFLOW_CONFIG`) →
//! `CITAFLOW__SECTION__KEY` environment variables.
//!
//! Every service reads the same [`Settings`] so one environment (a `.env` file, a Helm
//! ConfigMap) fits them all; each service checks the sections it needs at start-up. Unknown
//! keys are errors, so a misspelt variable stops the service instead of being ignored.

use std::path::Path;

use anyhow::{Context, bail};
use figment::{
    Figment, Metadata, Profile, Provider,
    providers::{Format, Toml},
    value::{Dict, Map, Value},
};
use schemars::JsonSchema;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

/// Environment variable naming an optional TOML settings file.
pub const CONFIG_FILE_VAR: &str = "CITAFLOW_CONFIG";
/// Prefix of the environment variables that override settings.
pub const ENV_PREFIX: &str = "CITAFLOW__";

/// `CITAFLOW__SECTION__KEY` environment variables as settings. Values are taken as text (a
/// phone number such as `+34600000000` or an all-digit password must stay text; figment's own
/// `Env` provider would turn them into numbers); only a value in brackets (`[1000, 10000]`) is
/// read as a list. Numeric settings accept text through [`lenient::number`].
#[derive(Debug, Clone, Default)]
pub struct RawEnv {
    vars: Vec<(String, String)>,
}

impl RawEnv {
    pub fn from_process() -> Self {
        Self::from_vars(std::env::vars())
    }

    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            vars: vars
                .into_iter()
                .filter(|(k, _)| k.starts_with(ENV_PREFIX))
                .collect(),
        }
    }
}

impl Provider for RawEnv {
    fn metadata(&self) -> Metadata {
        Metadata::named("CITAFLOW__* environment variables")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (key, raw) in &self.vars {
            let path: Vec<String> = key[ENV_PREFIX.len()..]
                .split("__")
                .map(|p| p.to_ascii_lowercase())
                .collect();
            if path.iter().any(String::is_empty) {
                continue;
            }
            let value = if raw.trim_start().starts_with('[') {
                raw.parse::<Value>().expect("infallible")
            } else {
                Value::from(raw.clone())
            };
            let mut dict = root;
            let (leaf, sections) = path.split_last().expect("non-empty");
            let mut nested = Dict::new();
            nested.insert(leaf.clone(), value);
            let mut value = Value::from(nested);
            for section in sections.iter().rev() {
                let mut outer = Dict::new();
                outer.insert(section.clone(), value);
                value = Value::from(outer);
            }
            if let Value::Dict(_, entries) = value {
                for (k, v) in entries {
                    merge(&mut dict, k, v);
                }
            }
            root = dict;
        }
        Ok(Profile::Default.collect(root))
    }
}

fn merge(dict: &mut Dict, key: String, value: Value) {
    match (dict.get_mut(&key), value) {
        (Some(Value::Dict(_, existing)), Value::Dict(_, new)) => {
            for (k, v) in new {
                merge(existing, k, v);
            }
        }
        (_, value) => {
            dict.insert(key, value);
        }
    }
}

/// Secrets are never written out, not even their defaults.
fn masked<S: Serializer>(_: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str("<secret>")
}

fn masked_opt<S: Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => serializer.serialize_str("<secret>"),
        None => serializer.serialize_none(),
    }
}

/// Deserializers that accept a number as a number or as text.
pub mod lenient {
    use serde::{Deserialize, Deserializer, de::Error};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrText<T> {
        Number(T),
        Text(String),
    }

    pub fn number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        match NumberOrText::<T>::deserialize(deserializer)? {
            NumberOrText::Number(n) => Ok(n),
            NumberOrText::Text(s) => s
                .trim()
                .parse()
                .map_err(|e| D::Error::custom(format!("`{s}`: {e}"))),
        }
    }
}

/// All settings of all services.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub http: HttpSettings,
    pub log: LogSettings,
    pub database: DatabaseSettings,
    pub kafka: KafkaSettings,
    pub registry: RegistrySettings,
    pub topics: TopicSettings,
    pub auth: AuthSettings,
    pub api: ApiSettings,
    pub processor: ProcessorSettings,
    pub notifier: NotifierSettings,
    pub smtp: SmtpSettings,
    pub sms: SmsSettings,
}

impl Settings {
    /// Loads settings from the file named by `CITAFLOW_CONFIG` (if any) and the environment.
    pub fn load() -> anyhow::Result<Self> {
        let file = std::env::var_os(CONFIG_FILE_VAR);
        Self::load_from(file.as_deref().map(Path::new), RawEnv::from_process())
    }

    /// Loads settings from an optional file and an environment provider (tests pass their own).
    pub fn load_from(file: Option<&Path>, env: RawEnv) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.exists() {
                bail!("settings file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file(path));
        }
        let settings: Settings = figment
            .merge(env)
            .extract()
            .context("invalid settings (check CITAFLOW__* variables and the settings file)")?;
        settings.check()?;
        Ok(settings)
    }

    /// Cross-field checks shared by every service.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.kafka.bootstrap_servers.trim().is_empty() {
            bail!("kafka.bootstrap_servers must not be empty");
        }
        if self.topics.retry_delays_ms.contains(&0) {
            bail!("topics.retry_delays_ms must be positive");
        }
        if self.topics.retry_delays_ms.windows(2).any(|w| w[0] > w[1]) {
            bail!("topics.retry_delays_ms must not decrease");
        }
        if self.processor.reminder_offsets_minutes.contains(&0)
            || self.processor.reminder_offsets_minutes.len() > 10
        {
            bail!("processor.reminder_offsets_minutes: at most 10, each positive");
        }
        if self.processor.waitlist_hold_secs == 0 || self.processor.waitlist_poll_interval_ms == 0 {
            bail!(
                "processor.waitlist_hold_secs and processor.waitlist_poll_interval_ms must be positive"
            );
        }
        if self.processor.reminder_poll_interval_ms == 0 {
            bail!("processor.reminder_poll_interval_ms must be positive");
        }
        if self.processor.batch_max == 0 {
            bail!("processor.batch_max must be positive");
        }
        if self.processor.drain_timeout_ms == 0 {
            bail!("processor.drain_timeout_ms must be positive");
        }
        let ladder_ms: u64 = self.topics.retry_delays_ms.iter().sum();
        if self
            .processor
            .expire_pending_after_secs
            .saturating_mul(1000)
            <= ladder_ms
        {
            bail!(
                "processor.expire_pending_after_secs must be longer than the retry ladder \
                 ({ladder_ms} ms in topics.retry_delays_ms)"
            );
        }
        if self.http.port != 0 && self.http.port == self.http.ops_port {
            bail!("http.ops_port must differ from http.port (metrics stay off the API port)");
        }
        if self.api.booking_horizon_days == 0 {
            bail!("api.booking_horizon_days must be positive");
        }
        if self.api.booking_rate_per_sec > 0 && self.api.booking_rate_burst == 0 {
            bail!("api.booking_rate_burst must be positive when api.booking_rate_per_sec is set");
        }
        Ok(())
    }
}

/// Where a service's HTTP server listens.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    pub host: String,
    /// 0 picks a free port (tests). ingest-api serves its API (and `/health/*`) here; the
    /// processor and the notifiers serve only their ops endpoints here.
    #[serde(deserialize_with = "lenient::number")]
    pub port: u16,
    /// ingest-api's ops listener (`/metrics`, and `/health/*` again), kept off the public API
    /// port; on the same host. 0 picks a free port (tests). The processor and the notifiers
    /// ignore it: their one listener (`port`) is already an ops listener.
    #[serde(deserialize_with = "lenient::number")]
    pub ops_port: u16,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            ops_port: 8089,
        }
    }
}

impl HttpSettings {
    /// The same host on the ops port, for [`crate::ops::bind`].
    pub fn ops(&self) -> HttpSettings {
        HttpSettings {
            host: self.host.clone(),
            port: self.ops_port,
            ops_port: self.ops_port,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `info,booking_processor=debug`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    #[serde(serialize_with = "masked")]
    #[schemars(with = "String", extend("x-secret" = true))]
    pub url: SecretString,
    #[serde(deserialize_with = "lenient::number")]
    pub max_connections: u32,
    #[serde(deserialize_with = "lenient::number")]
    pub acquire_timeout_ms: u64,
    #[serde(deserialize_with = "lenient::number")]
    pub statement_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("postgres://citaflow:citaflow@127.0.0.1:55432/citaflow"),
            max_connections: 10,
            acquire_timeout_ms: 3_000,
            statement_timeout_ms: 5_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSettings {
    pub bootstrap_servers: String,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: String,
    pub sasl_mechanism: Option<String>,
    pub sasl_username: Option<String>,
    #[serde(serialize_with = "masked_opt")]
    #[schemars(with = "Option<String>", extend("x-secret" = true))]
    pub sasl_password: Option<SecretString>,
    /// Upper bound for one produce, including librdkafka's own retries.
    #[serde(deserialize_with = "lenient::number")]
    pub message_timeout_ms: u64,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            bootstrap_servers: "127.0.0.1:9092".into(),
            security_protocol: "plaintext".into(),
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            message_timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrySettings {
    /// Root of the Confluent-compatible API, e.g. `http://127.0.0.1:8081/apis/ccompat/v7`.
    pub url: String,
    #[serde(deserialize_with = "lenient::number")]
    pub timeout_ms: u64,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8081/apis/ccompat/v7".into(),
            timeout_ms: 5_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TopicSettings {
    pub requests: String,
    pub events: String,
    pub dlq: String,
    /// Delays of the retry topics, shortest first; one topic each, named
    /// `<requests>.retry.<delay>` (e.g. `booking.requests.retry.10s`).
    pub retry_delays_ms: Vec<u64>,
}

impl Default for TopicSettings {
    fn default() -> Self {
        Self {
            requests: "booking.requests".into(),
            events: "booking.events".into(),
            dlq: "booking.requests.dlq".into(),
            retry_delays_ms: vec![1_000, 10_000, 60_000],
        }
    }
}

impl TopicSettings {
    /// Names of the retry topics, in the order of `retry_delays_ms`.
    pub fn retry_topics(&self) -> Vec<String> {
        self.retry_delays_ms
            .iter()
            .map(|ms| format!("{}.retry.{}", self.requests, delay_label(*ms)))
            .collect()
    }
}

/// `1000` → `1s`, `1500` → `1500ms`.
pub fn delay_label(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// HMAC key for JWTs; at least 32 bytes. Required by ingest-api.
    #[serde(serialize_with = "masked_opt")]
    #[schemars(with = "Option<String>", extend("x-secret" = true))]
    pub jwt_secret: Option<SecretString>,
    pub issuer: String,
    pub audience: String,
    #[serde(deserialize_with = "lenient::number")]
    pub token_ttl_secs: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            issuer: "citaflow".into(),
            audience: "citaflow-api".into(),
            token_ttl_secs: 3_600,
        }
    }
}

impl AuthSettings {
    /// The signing key, refusing a missing or weak one.
    pub fn signing_key(&self) -> anyhow::Result<&[u8]> {
        let Some(secret) = &self.jwt_secret else {
            bail!("auth.jwt_secret is required (CITAFLOW__AUTH__JWT_SECRET)");
        };
        let key = secret.expose_secret().as_bytes();
        if key.len() < 32 {
            bail!("auth.jwt_secret is too weak: use at least 32 random bytes");
        }
        if key.iter().all(|b| *b == key[0]) {
            bail!("auth.jwt_secret is too weak: it repeats one character");
        }
        Ok(key)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// Longest `Prefer: wait=N` honoured, in seconds.
    #[serde(deserialize_with = "lenient::number")]
    pub max_wait_secs: u64,
    /// Largest request body accepted, in bytes.
    #[serde(deserialize_with = "lenient::number")]
    pub body_limit_bytes: usize,
    /// How far ahead a booking (or a reschedule) may start, in days from now; later starts are
    /// refused with 422.
    #[serde(deserialize_with = "lenient::number")]
    pub booking_horizon_days: u32,
    /// Minimum notice of a free slot, in minutes: `GET /availability` offers no slot that
    /// starts sooner than this from now.
    #[serde(deserialize_with = "lenient::number")]
    pub availability_notice_minutes: u32,
    /// Most future bookings (pending or confirmed, starting after now) one patient may hold,
    /// whoever books for them; one more is refused with 409 `too_many_bookings`. 0: no limit.
    #[serde(deserialize_with = "lenient::number")]
    pub max_future_bookings_per_patient: u32,
    /// Booking commands (create, cancel, reschedule) one user may send per second, on
    /// average, per API replica; more get 429 with `Retry-After`. Admins are not limited.
    /// 0: no limit.
    #[serde(deserialize_with = "lenient::number")]
    pub booking_rate_per_sec: u32,
    /// Booking commands one user may send at once before `booking_rate_per_sec` applies
    /// (the token bucket's size).
    #[serde(deserialize_with = "lenient::number")]
    pub booking_rate_burst: u32,
    /// Patient sign-ups (`POST /auth/signup`) one address may attempt per hour, per API
    /// replica; more get 429 with `Retry-After`.
    #[serde(deserialize_with = "lenient::number")]
    pub signups_per_address_per_hour: u32,
    /// Directory of the built web app (`web/dist`), served by ingest-api at `/` (its pages
    /// under `/app/`, hashed files under `/assets/`). Unset: no web app.
    pub web_dir: Option<String>,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            max_wait_secs: 30,
            body_limit_bytes: 2 * 1024 * 1024,
            booking_horizon_days: 365,
            availability_notice_minutes: 120,
            max_future_bookings_per_patient: 20,
            booking_rate_per_sec: 5,
            booking_rate_burst: 20,
            signups_per_address_per_hour: 10,
            web_dir: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessorSettings {
    pub group_id: String,
    /// Deadline for in-flight work after SIGTERM or a partition revocation.
    #[serde(deserialize_with = "lenient::number")]
    pub drain_timeout_ms: u64,
    /// Shortest appointment accepted, in minutes.
    #[serde(deserialize_with = "lenient::number")]
    pub min_duration_minutes: i64,
    /// Longest appointment accepted, in minutes.
    #[serde(deserialize_with = "lenient::number")]
    pub max_duration_minutes: i64,
    /// A booking still pending this long after its request (its command never reached Kafka)
    /// is closed `not_accepted` by an expiry command on its doctor's partition. Longer than
    /// the retry ladder (`topics.retry_delays_ms` added up).
    #[serde(deserialize_with = "lenient::number")]
    pub expire_pending_after_secs: u64,
    /// How often each processor looks for such bookings.
    #[serde(deserialize_with = "lenient::number")]
    pub pending_sweep_interval_secs: u64,
    /// When patients are reminded of a confirmed visit, in minutes before its start, by email
    /// and SMS (a center's own `reminder_offsets_minutes` overrides it; empty: none).
    pub reminder_offsets_minutes: Vec<u32>,
    /// How often each processor looks for reminders that are due (a reminder is published at
    /// most this late).
    #[serde(deserialize_with = "lenient::number")]
    pub reminder_poll_interval_ms: u64,
    /// How long a freed slot offered to a waiting patient is held for them before it is
    /// offered to the next one, in seconds.
    #[serde(deserialize_with = "lenient::number")]
    pub waitlist_hold_secs: u64,
    /// How often each processor looks for lapsed holds and freed slots still to offer (a
    /// cancellation wakes it at once; this bounds how late a lapsed hold moves on).
    #[serde(deserialize_with = "lenient::number")]
    pub waitlist_poll_interval_ms: u64,
    /// Most records a partition's worker takes at once; runs of plain commands among them are
    /// decided in one transaction each (1: one command per transaction).
    #[serde(deserialize_with = "lenient::number")]
    pub batch_max: usize,
    /// How long a worker that found fewer than `batch_max` records queued waits for more
    /// before deciding them, in milliseconds (0: it takes what is queued and never waits).
    #[serde(deserialize_with = "lenient::number")]
    pub batch_wait_ms: u64,
}

impl Default for ProcessorSettings {
    fn default() -> Self {
        Self {
            group_id: "booking-processor".into(),
            drain_timeout_ms: 20_000,
            min_duration_minutes: 5,
            max_duration_minutes: 480,
            expire_pending_after_secs: 300,
            pending_sweep_interval_secs: 30,
            reminder_offsets_minutes: vec![24 * 60],
            reminder_poll_interval_ms: 5_000,
            waitlist_hold_secs: 15 * 60,
            waitlist_poll_interval_ms: 2_000,
            batch_max: 64,
            batch_wait_ms: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NotifierSettings {
    pub channel: Channel,
    /// Consumer group; defaults to `notifier-<channel>`.
    pub group_id: Option<String>,
    /// Language used when neither patient nor center says (`es` or `en`).
    pub default_language: String,
    #[serde(deserialize_with = "lenient::number")]
    pub drain_timeout_ms: u64,
    /// How long a recipient the SMTP server keeps refusing for now (a 4xx reply to `MAIL FROM`,
    /// `RCPT TO` or the message, e.g. `450 4.2.1 Mailbox busy`) is retried, counted from the
    /// delivery's first attempt; then its delivery is recorded `failed` with the reason and the
    /// notifier moves on. Retries happen in place, so this is also the longest one such
    /// recipient holds its partition's later notifications. An unreachable server (connection
    /// refused, timeouts, `421` service closing) is not bounded by this: it is retried until it
    /// is back. 0 gives up at the first refusal.
    #[serde(deserialize_with = "lenient::number")]
    pub deferred_give_up_secs: u64,
    /// Where patients reach the web app: messages link to it (a waitlist offer to
    /// `<public_base_url>/waitlist/offers/<id>`).
    pub public_base_url: String,
}

impl Default for NotifierSettings {
    fn default() -> Self {
        Self {
            channel: Channel::Email,
            group_id: None,
            default_language: "es".into(),
            drain_timeout_ms: 20_000,
            deferred_give_up_secs: 600,
            public_base_url: "http://localhost:8080".into(),
        }
    }
}

impl NotifierSettings {
    pub fn group_id(&self) -> String {
        self.group_id
            .clone()
            .unwrap_or_else(|| format!("notifier-{}", self.channel.as_str()))
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP (local Mailpit).
    None,
    /// STARTTLS upgrade on the submission port.
    Starttls,
    /// Implicit TLS (SMTPS).
    Tls,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    pub host: String,
    #[serde(deserialize_with = "lenient::number")]
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    #[serde(serialize_with = "masked_opt")]
    #[schemars(with = "Option<String>", extend("x-secret" = true))]
    pub password: Option<SecretString>,
    pub from: String,
    #[serde(deserialize_with = "lenient::number")]
    pub timeout_ms: u64,
    /// Base URL of the mail system's message search (Mailpit's API shape:
    /// `GET {url}/api/v1/search?query=message-id:…`). When an earlier attempt may have
    /// delivered an email (its sender died or lost the connection after handing it over), the
    /// notifier looks for the email's Message-ID there before sending it again. Unset: the
    /// email is sent again with the same Message-ID.
    pub message_log_url: Option<String>,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 1025,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "Citaflow <citas@citaflow.local>".into(),
            timeout_ms: 10_000,
            message_log_url: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SmsSettings {
    /// Base URL of the Twilio-compatible Messages API.
    pub base_url: String,
    pub account_sid: String,
    #[serde(serialize_with = "masked_opt")]
    #[schemars(with = "Option<String>", extend("x-secret" = true))]
    pub auth_token: Option<SecretString>,
    /// Sender number (E.164).
    pub from: String,
    #[serde(deserialize_with = "lenient::number")]
    pub timeout_ms: u64,
}

impl Default for SmsSettings {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8099".into(),
            account_sid: "ACcitaflowlocal".into(),
            auth_token: None,
            from: "+34600000000".into(),
            timeout_ms: 10_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn environment_overrides_defaults() {
        Jail::expect_with(|jail| {
            jail.set_env("CITAFLOW__KAFKA__BOOTSTRAP_SERVERS", "10.0.0.1:9092");
            jail.set_env("CITAFLOW__HTTP__PORT", "9999");
            jail.set_env("CITAFLOW__TOPICS__RETRY_DELAYS_MS", "[500, 2000]");
            let s = Settings::load_from(None, RawEnv::from_process()).unwrap();
            assert_eq!(s.kafka.bootstrap_servers, "10.0.0.1:9092");
            assert_eq!(s.http.port, 9999);
            assert_eq!(
                s.topics.retry_topics(),
                vec!["booking.requests.retry.500ms", "booking.requests.retry.2s"]
            );
            Ok(())
        });
    }

    #[test]
    fn file_is_layered_under_environment() {
        Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[http]\nport = 7000\nhost = \"0.0.0.0\"\n")?;
            jail.set_env("CITAFLOW__HTTP__PORT", "7001");
            let s = Settings::load_from(Some(Path::new("c.toml")), RawEnv::from_process()).unwrap();
            assert_eq!(s.http.port, 7001);
            assert_eq!(s.http.host, "0.0.0.0");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_rejected() {
        Jail::expect_with(|jail| {
            jail.set_env("CITAFLOW__KAFKA__BOOTSTRAP_SERVER", "typo:9092");
            let err = Settings::load_from(None, RawEnv::from_process());
            assert!(err.is_err(), "a misspelt key must be refused");
            Ok(())
        });
    }

    #[test]
    fn secrets_are_not_printed() {
        Jail::expect_with(|jail| {
            jail.set_env("CITAFLOW__DATABASE__URL", "postgres://u:hunter2@db/x");
            let s = Settings::load_from(None, RawEnv::from_process()).unwrap();
            assert!(!format!("{s:?}").contains("hunter2"));
            Ok(())
        });
    }

    #[test]
    fn weak_or_missing_jwt_keys_are_refused() {
        let mut auth = AuthSettings::default();
        assert!(auth.signing_key().is_err());
        auth.jwt_secret = Some(SecretString::from("short"));
        assert!(auth.signing_key().is_err());
        auth.jwt_secret = Some(SecretString::from("a".repeat(64)));
        assert!(auth.signing_key().is_err());
        auth.jwt_secret = Some(SecretString::from(
            "3f9a1c2b7d4e6f8091a2b3c4d5e6f7081920a1b2c3d4e5f6",
        ));
        assert!(auth.signing_key().is_ok());
    }

    #[test]
    fn the_ops_port_must_not_be_the_api_port() {
        let mut s = Settings::default();
        assert!(s.check().is_ok());
        s.http.ops_port = s.http.port;
        assert!(s.check().is_err());
        s.http.port = 0;
        s.http.ops_port = 0;
        assert!(s.check().is_ok(), "two free ports (tests)");
    }

    #[test]
    fn decreasing_retry_delays_are_refused() {
        let mut s = Settings::default();
        s.topics.retry_delays_ms = vec![10_000, 1_000];
        assert!(s.check().is_err());
    }
}

#[cfg(test)]
mod lenient_tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn numeric_looking_strings_stay_strings() {
        Jail::expect_with(|jail| {
            jail.set_env("CITAFLOW__SMS__FROM", "+34600000000");
            jail.set_env("CITAFLOW__SMTP__PASSWORD", "123456");
            jail.set_env(
                "CITAFLOW__AUTH__JWT_SECRET",
                "1234567890123456789012345678901234567890",
            );
            jail.set_env("CITAFLOW__SMTP__USERNAME", "true");
            let s = Settings::load_from(None, RawEnv::from_process()).unwrap();
            assert_eq!(s.sms.from, "+34600000000");
            assert_eq!(s.smtp.password.as_ref().unwrap().expose_secret(), "123456");
            assert_eq!(s.smtp.username.as_deref(), Some("true"));
            Ok(())
        });
    }
}
