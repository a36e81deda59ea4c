//! Test harness: every test gets its own database, topics and consumer groups on the real
//! local stack (Kafka, PostgreSQL, schema registry, Mailpit started by `./dev up`), and runs
//! the real services in-process against them. Tests therefore run in parallel and leave no
//! residue: the database and topics are dropped when the [`TestApp`] is dropped.

use std::{collections::HashMap, path::PathBuf, sync::OnceLock, time::Duration};

use anyhow::Context;
use chrono::{DateTime, Utc};
use citaflow_platform::{
    Settings, contract, db, kafka,
    settings::{Channel, RawEnv},
};
use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions},
    client::DefaultClientContext,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub mod containers;
pub mod faults;
pub mod mailpit;
pub mod process;
pub mod sms;

use faults::TcpProxy;

/// Endpoints of the running local stack.
#[derive(Debug, Clone)]
pub struct Stack {
    pub database_url: String,
    pub admin_database_url: String,
    pub kafka: String,
    pub registry: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub mailpit: String,
    pub jwt_secret: String,
}

fn stack_env_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.run/stack.env")
}

impl Stack {
    /// Reads the stack's endpoints from the environment, falling back to `.run/stack.env`
    /// written by `./dev up`. Panics with instructions when the stack is not there: these
    /// tests need the real services and never pass without them. With
    /// `CITAFLOW_TEST_STACK=testcontainers` the tests start their own infrastructure instead
    /// ([`containers`]).
    pub fn get() -> &'static Stack {
        static STACK: OnceLock<Stack> = OnceLock::new();
        STACK.get_or_init(|| {
            if containers::enabled() {
                return containers::start();
            }
            let file: HashMap<String, String> = contract::read_env_file(&stack_env_file())
                .map(|vars| vars.into_iter().collect())
                .unwrap_or_default();
            let var = |key: &str| {
                std::env::var(key).ok().or_else(|| file.get(key).cloned()).unwrap_or_else(|| {
                    panic!("{key} is not set: start the stack with `./dev up` (or run `./dev test`)")
                })
            };
            // The services' settings, read from the stack's environment by their own loader:
            // a name or value the launcher gets wrong fails here, as it would in a service.
            let settings_env = file
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .chain(std::env::vars())
                .filter(|(k, _)| k.starts_with(citaflow_platform::settings::ENV_PREFIX));
            let settings = Settings::load_from(None, RawEnv::from_vars(settings_env))
                .expect("the stack's CITAFLOW__ settings load as the services load them");
            Stack {
                database_url: settings.database.url.expose_secret().to_owned(),
                admin_database_url: var("CITAFLOW_DEV_ADMIN_DATABASE_URL"),
                kafka: settings.kafka.bootstrap_servers,
                registry: settings.registry.url,
                smtp_host: settings.smtp.host,
                smtp_port: settings.smtp.port,
                mailpit: var("CITAFLOW_DEV_MAILPIT_URL"),
                jwt_secret: settings
                    .auth
                    .jwt_secret
                    .expect("CITAFLOW__AUTH__JWT_SECRET is set by ./dev")
                    .expose_secret()
                    .to_owned(),
            }
        })
    }
}

/// Which services a test runs.
#[derive(Debug, Clone, Copy)]
pub struct Services {
    pub api: bool,
    pub processor: bool,
    pub email: bool,
    pub sms: bool,
    /// Route the processor's PostgreSQL connections through a [`TcpProxy`] the test controls
    /// (the API keeps its direct path, so requests are still accepted during an outage).
    pub database_proxy: bool,
    /// Route the email notifier's SMTP connections through a [`TcpProxy`].
    pub smtp_proxy: bool,
}

impl Services {
    /// The API alone (no processor, no notifiers).
    pub fn api_only() -> Self {
        Self {
            processor: false,
            email: false,
            ..Self::default()
        }
    }

    /// API and processor, without the email notifier (tests that do not look at mail).
    pub fn no_email() -> Self {
        Self {
            email: false,
            ..Self::default()
        }
    }
}

impl Default for Services {
    fn default() -> Self {
        Self {
            api: true,
            processor: true,
            email: true,
            sms: false,
            database_proxy: false,
            smtp_proxy: false,
        }
    }
}

/// One test's private slice of the platform.
pub struct TestApp {
    pub id: String,
    pub settings: Settings,
    pub api_url: String,
    /// ingest-api's ops listener (`/metrics`, `/health/*`).
    pub api_ops_url: String,
    pub http: reqwest::Client,
    /// A bearer token of this test's admin, sent by [`TestApp::post`] and [`TestApp::get`].
    pub admin_token: String,
    pub pool: PgPool,
    pub database: String,
    pub topics: Vec<String>,
    pub processor_port: Option<u16>,
    /// Between the services and PostgreSQL, when asked for.
    pub database_proxy: Option<TcpProxy>,
    /// Between the email notifier and Mailpit's SMTP port, when asked for.
    pub smtp_proxy: Option<TcpProxy>,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Partitions of each test topic.
pub const TEST_PARTITIONS: i32 = 3;

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Services::default(), |_| {}).await
    }

    /// Creates the database and topics, then starts the chosen services with `configure`
    /// applied to their settings.
    pub async fn spawn_with(services: Services, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let stack = Stack::get();
        let id = Uuid::new_v4().simple().to_string()[..12].to_string();
        let database = format!("citaflow_test_{id}");

        let mut admin = PgConnection::connect(&stack.admin_database_url)
            .await
            .expect("connect to PostgreSQL (is ./dev up running?)");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let direct_url = replace_database(&stack.database_url, &database);
        let database_proxy = if services.database_proxy {
            Some(TcpProxy::start(faults::host_port(&direct_url)).await)
        } else {
            None
        };
        let processor_database_url = database_proxy.as_ref().map(|proxy| {
            faults::with_host_port(
                &direct_url,
                &faults::host_port(&direct_url),
                &format!("127.0.0.1:{}", proxy.port),
            )
        });
        let smtp_proxy = if services.smtp_proxy {
            Some(TcpProxy::start(format!("{}:{}", stack.smtp_host, stack.smtp_port)).await)
        } else {
            None
        };

        let mut settings = Settings::default();
        settings.log.level = "warn".into();
        settings.database.url = SecretString::from(direct_url.clone());
        settings.kafka.bootstrap_servers = stack.kafka.clone();
        settings.registry.url = stack.registry.clone();
        settings.smtp.host = stack.smtp_host.clone();
        settings.smtp.port = stack.smtp_port;
        settings.smtp.message_log_url = Some(stack.mailpit.clone());
        if let Some(proxy) = &smtp_proxy {
            settings.smtp.host = "127.0.0.1".into();
            settings.smtp.port = proxy.port;
        }
        settings.auth.jwt_secret = Some(SecretString::from(stack.jwt_secret.clone()));
        settings.http.port = 0;
        settings.http.ops_port = 0;
        // Tests book in bursts on purpose (200 requests for one patient); the clinic limits
        // are tested on their own (tests/tests/limits.rs), where a test sets them.
        settings.api.max_future_bookings_per_patient = 0;
        settings.api.booking_rate_per_sec = 0;
        let prefix = format!("t{id}");
        settings.topics.requests = format!("{prefix}.booking.requests");
        settings.topics.events = format!("{prefix}.booking.events");
        settings.topics.dlq = format!("{prefix}.booking.requests.dlq");
        settings.topics.retry_delays_ms = vec![500, 2_000];
        settings.processor.group_id = format!("{prefix}-booking-processor");
        settings.processor.drain_timeout_ms = 5_000;
        // Batches form whenever records arrive within a few milliseconds of each other, as
        // they do under load, so the workflow tests run the batched path.
        settings.processor.batch_wait_ms = 20;
        settings.notifier.group_id = None;
        configure(&mut settings);
        settings.check().expect("valid test settings");

        let mut topics = vec![
            settings.topics.requests.clone(),
            settings.topics.events.clone(),
            settings.topics.dlq.clone(),
        ];
        topics.extend(settings.topics.retry_topics());
        let specs: Vec<(&str, i32)> = topics
            .iter()
            .map(|t| (t.as_str(), TEST_PARTITIONS))
            .collect();
        kafka::ensure_topics(&settings.kafka, &specs)
            .await
            .expect("create test topics");

        // The test's own pool is patient, whatever the services are configured with.
        let mut own = settings.database.clone();
        own.acquire_timeout_ms = 10_000;
        own.statement_timeout_ms = 30_000;
        let pool = db::pool(&own).expect("pool");
        db::migrate(&pool).await.expect("migrate test database");

        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        // The first admin, created the documented way (`ingest-api create-admin`'s function).
        if services.api {
            ingest_api::create_admin(&settings, ADMIN_USERNAME, ADMIN_PASSWORD.into())
                .await
                .expect("create the test admin");
        }
        let mut api_url = String::new();
        let mut api_ops_url = String::new();
        let mut processor_port = None;
        if services.api {
            let app = ingest_api::Application::build(settings.clone())
                .await
                .expect("build api");
            api_url = format!("http://127.0.0.1:{}", app.port());
            api_ops_url = format!("http://127.0.0.1:{}", app.ops_port());
            tasks.push(tokio::spawn(app.run_until_stopped(shutdown.clone())));
        }
        if services.processor {
            let mut processor_settings = settings.clone();
            if let Some(url) = &processor_database_url {
                processor_settings.database.url = SecretString::from(url.clone());
                // Notice a cut path quickly (the API keeps its own, patient pool).
                processor_settings.database.acquire_timeout_ms = 500;
            }
            let app = booking_processor::Application::build(processor_settings)
                .await
                .expect("build processor");
            processor_port = Some(app.port());
            tasks.push(tokio::spawn(app.run_until_stopped(shutdown.clone())));
        }
        for (enabled, channel) in [
            (services.email, Channel::Email),
            (services.sms, Channel::Sms),
        ] {
            if enabled {
                let mut s = settings.clone();
                s.notifier.channel = channel;
                s.notifier.group_id = Some(format!("{prefix}-notifier-{}", channel.as_str()));
                let app = notifier::Application::build(s)
                    .await
                    .expect("build notifier");
                tasks.push(tokio::spawn(app.run_until_stopped(shutdown.clone())));
            }
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(40))
            .build()
            .unwrap();
        let admin_token = if services.api {
            login(&http, &api_url, ADMIN_USERNAME, ADMIN_PASSWORD)
                .await
                .expect("admin login")
        } else {
            String::new()
        };
        TestApp {
            id,
            settings,
            api_url,
            api_ops_url,
            http,
            admin_token,
            pool,
            database,
            topics,
            processor_port,
            database_proxy,
            smtp_proxy,
            shutdown,
            tasks,
        }
    }

    /// Starts one more in-process processor in the same consumer group.
    pub async fn spawn_processor(&mut self) -> u16 {
        let app = booking_processor::Application::build(self.settings.clone())
            .await
            .expect("build processor");
        let port = app.port();
        self.tasks
            .push(tokio::spawn(app.run_until_stopped(self.shutdown.clone())));
        port
    }

    /// Runs the `citaflow` CLI with this test's settings in its environment.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut command = std::process::Command::new(process::binary("citaflow"));
        for (key, _) in std::env::vars() {
            if key.starts_with("CITAFLOW__") {
                command.env_remove(key);
            }
        }
        command
            .envs(process::environment(&self.settings))
            .env("CITAFLOW_API_URL", &self.api_url)
            .args(args)
            .output()
            .expect("run citaflow")
    }

    /// Statuses of all bookings, counted.
    pub async fn status_counts(&self) -> HashMap<String, i64> {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT status, count(*) FROM appointments GROUP BY status",
        )
        .fetch_all(&self.pool)
        .await
        .expect("count statuses")
        .into_iter()
        .collect()
    }

    /// Waits until no booking is pending.
    pub async fn wait_until_none_pending(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let counts = self.status_counts().await;
            if counts.get("pending").copied().unwrap_or(0) == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still pending after {within:?}: {counts:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the services, letting them drain.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            match tokio::time::timeout(Duration::from_secs(30), task).await {
                Ok(Ok(Ok(()))) => {}
                other => panic!("a service did not stop cleanly: {other:?}"),
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.api_url, path)
    }

    /// POST as the test's admin.
    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.post_as(&self.admin_token, path, body).await
    }

    /// GET as the test's admin.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_as(&self.admin_token, path).await
    }

    pub async fn post_as(&self, token: &str, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET")
    }

    /// Any method, as `token` (empty: no Authorization header).
    pub async fn request_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, self.url(path));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request")
    }

    /// Logs in, answering the bearer token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        login(&self.http, &self.api_url, username, password)
            .await
            .expect("login")
    }

    /// Creates a center, answering its id.
    pub async fn create_center(&self) -> Uuid {
        let body = json!({
            "name": format!("Clínica Test {}", Uuid::new_v4().simple()),
            "address": "Calle Mayor 1, Madrid",
            "timezone": "Europe/Madrid",
        });
        created_id(self.post("/centers", &body).await).await
    }

    pub async fn create_doctor(&self) -> Uuid {
        let body = json!({ "name": "Dra. Marta Ruiz", "specialty": "Odontología" });
        created_id(self.post("/doctors", &body).await).await
    }

    /// Creates an active patient with a unique email, answering (id, email).
    pub async fn create_patient(&self, language: &str) -> (Uuid, String) {
        let email = format!("patient-{}@example.test", Uuid::new_v4().simple());
        let body = json!({
            "name": "Lucía Pérez",
            "email": email,
            "phone": "+34600123456",
            "language": language,
        });
        (created_id(self.post("/patients", &body).await).await, email)
    }

    /// A new patient with a password, booking with `d`'s doctor and center, and the
    /// patient's own token.
    pub async fn patient_who_logs_in(&self, d: &Directory) -> (Directory, String) {
        const PASSWORD: &str = "a-long-enough-password";
        let email = format!("patient-{}@example.test", Uuid::new_v4().simple());
        let body = json!({"name": "Ana", "email": email, "password": PASSWORD});
        let patient = created_id(self.post("/patients", &body).await).await;
        let token = self.login(&email, PASSWORD).await;
        let own = Directory {
            patient,
            email,
            ..d.clone()
        };
        (own, token)
    }

    /// Decodes the Avro records of this test's events topic.
    pub async fn decode_events(
        &self,
        records: &[rdkafka::message::OwnedMessage],
    ) -> Vec<citaflow_schemas::BookingEvent> {
        use rdkafka::Message;
        let registry = citaflow_schemas::RegistryClient::new(
            &self.settings.registry.url,
            Duration::from_secs(5),
        )
        .unwrap();
        let codec = citaflow_schemas::AvroCodec::<citaflow_schemas::BookingEvent>::new(
            registry,
            &self.settings.topics.events,
        );
        let mut events = Vec::with_capacity(records.len());
        for record in records {
            events.push(codec.decode(record.payload().unwrap()).await.unwrap());
        }
        events
    }

    /// A doctor, a center and a patient ready to book.
    pub async fn directory(&self) -> Directory {
        let (patient, email) = self.create_patient("es").await;
        Directory {
            doctor: self.create_doctor().await,
            center: self.create_center().await,
            patient,
            email,
        }
    }

    /// `POST /bookings`, answering the raw response.
    pub async fn book(
        &self,
        d: &Directory,
        start: DateTime<Utc>,
        minutes: i64,
    ) -> reqwest::Response {
        let body = json!({
            "patient_id": d.patient,
            "doctor_id": d.doctor,
            "center_id": d.center,
            "start": start.to_rfc3339(),
            "duration_minutes": minutes,
            "reason": "Revisión anual",
        });
        self.post("/bookings", &body).await
    }

    /// Polls `GET /bookings/{id}` until its status is not `pending`, answering the booking.
    pub async fn wait_for_decision(&self, booking_id: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let response = self.get(&format!("/bookings/{booking_id}")).await;
            assert_eq!(response.status(), 200, "GET /bookings/{booking_id}");
            let booking: Value = response.json().await.unwrap();
            if booking["status"] != "pending" {
                return booking;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "booking {booking_id} still pending after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub const ADMIN_USERNAME: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

async fn login(
    http: &reqwest::Client,
    api_url: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<String> {
    let response = http
        .post(format!("{api_url}/auth/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    anyhow::ensure!(
        status == 200,
        "login as {username} answered {status}: {body}"
    );
    Ok(body["access_token"]
        .as_str()
        .context("access_token")?
        .to_owned())
}

/// Ids of one bookable combination.
#[derive(Debug, Clone)]
pub struct Directory {
    pub doctor: Uuid,
    pub center: Uuid,
    pub patient: Uuid,
    pub email: String,
}

async fn created_id(response: reqwest::Response) -> Uuid {
    let status = response.status();
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(status, 201, "create failed: {body}");
    body["id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .expect("id in body")
}

fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

/// A consumer reading `topic` from the beginning in a fresh group.
pub fn raw_consumer(topic: &str) -> rdkafka::consumer::BaseConsumer {
    use rdkafka::consumer::Consumer;
    let consumer: rdkafka::consumer::BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &Stack::get().kafka)
        .set("group.id", format!("inspect-{}", Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// Reads every record currently in `topic` (until `idle` passes without a new one).
pub fn read_all(
    topic: &str,
    expect_at_least: usize,
    within: Duration,
) -> Vec<rdkafka::message::OwnedMessage> {
    let consumer = raw_consumer(topic);
    let deadline = std::time::Instant::now() + within;
    let mut out = Vec::new();
    let mut idle_since = std::time::Instant::now();
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                out.push(m.detach());
                idle_since = std::time::Instant::now();
            }
            Some(Err(e)) => panic!("consuming {topic}: {e}"),
            None => {
                if out.len() >= expect_at_least && idle_since.elapsed() > Duration::from_secs(1) {
                    break;
                }
            }
        }
    }
    out
}

impl Drop for TestApp {
    /// Stops the services and removes the test's database and topics.
    fn drop(&mut self) {
        self.shutdown.cancel();
        let database = self.database.clone();
        let topics = self.topics.clone();
        let pool = self.pool.clone();
        let handle = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                // A connection released by the test's last statement is handed back by a task
                // of the test's runtime, which this drop blocks: don't wait for it forever.
                let _ = tokio::time::timeout(Duration::from_secs(2), pool.close()).await;
                let _ = cleanup(&database, &topics).await;
            })
        });
        let _ = handle.join();
    }
}

async fn cleanup(database: &str, topics: &[String]) -> anyhow::Result<()> {
    let stack = Stack::get();
    // Give in-process services a moment to notice the cancellation and let go.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut admin = PgConnection::connect(&stack.admin_database_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .context("dropping test database")?;
    let admin_client: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka)
        .create()?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    admin_client
        .delete_topics(&names, &AdminOptions::new())
        .await?;
    Ok(())
}

/// A start time `hours` from now, on a whole minute.
/// A TCP port free on the loopback interface now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// What a processor's batch metrics say for one consumer group.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Batches {
    /// Decision transactions of batched commands.
    pub batches: f64,
    /// Commands decided in them.
    pub commands: f64,
}

impl Batches {
    /// Reads `citaflow_processor_batch_size` for `group` from Prometheus text.
    pub fn parse(metrics: &str, group: &str) -> Batches {
        let label = format!("group=\"{group}\"");
        let value = |name: &str| {
            metrics
                .lines()
                .filter(|l| l.starts_with(name) && l.contains(&label))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        };
        Batches {
            batches: value("citaflow_processor_batch_size_count"),
            commands: value("citaflow_processor_batch_size_sum"),
        }
    }

    /// The batches of this test's in-process processors.
    pub fn in_process(app: &TestApp) -> Batches {
        let text = citaflow_platform::ops::metrics_handle().render();
        Batches::parse(&text, &app.settings.processor.group_id)
    }

    /// Some batch held more than one command.
    pub fn assert_formed(&self) {
        eprintln!(
            "batches: {} decision transactions for {} commands",
            self.batches, self.commands
        );
        assert!(
            self.commands > self.batches,
            "batches of more than one command were decided: {self:?}"
        );
    }
}

pub fn in_hours(hours: i64) -> DateTime<Utc> {
    let t = Utc::now() + chrono::Duration::hours(hours);
    DateTime::from_timestamp(t.timestamp() - t.timestamp() % 60, 0).unwrap()
}
