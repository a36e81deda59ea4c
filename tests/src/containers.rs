//! The platform's infrastructure started by the tests themselves, with `testcontainers`,
//! instead of the `./dev` stack: `CITAFLOW_TEST_STACK=testcontainers`. PostgreSQL, Kafka
//! (KRaft), Apicurio Registry (in-memory storage) and Mailpit run as containers of the Docker
//! API engine named by `DOCKER_HOST`; the tests then use them exactly as they use the `./dev`
//! stack (each test its own database, topics and consumer groups).
//!
//! The images are the upstream ones unless `CITAFLOW_POSTGRES_IMAGE`, `CITAFLOW_KAFKA_IMAGE`,
//! `CITAFLOW_REGISTRY_IMAGE` or `CITAFLOW_MAILPIT_IMAGE` name others (the same variables as
//! compose.yaml; scripts/containers/testcontainers.sh sets the locally built ones).
//!
//! The containers are started once and shared: they are marked for reuse under fixed names,
//! so every test binary of a `cargo test` run (and the next run) finds them running instead
//! of paying for four JVM and database start-ups each. They carry the label
//! `io.citaflow.testcontainers`; scripts/containers/testcontainers.sh removes them when the
//! tests are done.

use std::time::{Duration, Instant};

use rdkafka::{
    ClientConfig,
    consumer::{BaseConsumer, Consumer},
};
use sqlx::{Connection, PgConnection};
use testcontainers::{
    ContainerAsync, ContainerRequest, GenericImage, ImageExt, ReuseDirective,
    core::{ContainerPort, IntoContainerPort},
    runners::AsyncRunner,
};

use crate::Stack;

/// The variable that switches the tests to their own containers.
pub const SWITCH: &str = "CITAFLOW_TEST_STACK";
/// Label on every container started here (what the cleanup removes).
pub const LABEL: &str = "io.citaflow.testcontainers";

const POSTGRES_IMAGE: &str = "postgres:15";
const KAFKA_IMAGE: &str = "apache/kafka:4.3.1";
const REGISTRY_IMAGE: &str = "apicurio/apicurio-registry:3.3.3";
const MAILPIT_IMAGE: &str = "axllent/mailpit:v1.27.11";
const STARTUP: Duration = Duration::from_secs(180);

/// Whether `CITAFLOW_TEST_STACK` asks for testcontainers (`dev`, the default, is the
/// `./dev` stack). Any other value is a mistake and stops the tests.
pub fn enabled() -> bool {
    match std::env::var(SWITCH).as_deref() {
        Err(_) | Ok("") | Ok("dev") => false,
        Ok("testcontainers") => true,
        Ok(other) => panic!("{SWITCH} must be `dev` or `testcontainers`, not `{other}`"),
    }
}

/// Starts (or finds running) the four containers and returns their endpoints. Runs on a
/// thread of its own with its own runtime: it is called from inside the tests' runtimes.
pub fn start() -> Stack {
    std::thread::spawn(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for starting the containers")
            .block_on(start_all())
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// `repository[:tag]` from `var`, else `default`.
fn image(var: &str, default: &str) -> GenericImage {
    let reference = std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned());
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match reference[slash..].rfind(':') {
        Some(colon) => (&reference[..slash + colon], &reference[slash + colon + 1..]),
        None => (reference.as_str(), "latest"),
    };
    GenericImage::new(name, tag)
}

/// A free TCP port on loopback now (for Kafka, whose advertised address must be known before
/// it starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

async fn host_port(container: &ContainerAsync<GenericImage>, port: u16) -> u16 {
    container
        .get_host_port_ipv4(port.tcp())
        .await
        .unwrap_or_else(|e| panic!("host port of container port {port}: {e}"))
}

async fn start_one(
    what: &str,
    request: impl Into<ContainerRequest<GenericImage>>,
) -> ContainerAsync<GenericImage> {
    request
        .into()
        .with_container_name(format!("citaflow-tc-{what}"))
        .with_label(LABEL, "1")
        .with_reuse(ReuseDirective::Always)
        .with_startup_timeout(STARTUP)
        .start()
        .await
        .unwrap_or_else(|e| {
            panic!("starting the {what} container failed (is DOCKER_HOST an engine?): {e}")
        })
}

/// Polls `check` until it answers true or the startup deadline passes.
async fn until_ready<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + STARTUP;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "the {what} container did not become ready within {STARTUP:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn start_all() -> Stack {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let kafka_port = free_port();
    let postgres = image("CITAFLOW_POSTGRES_IMAGE", POSTGRES_IMAGE)
        .with_exposed_port(5432.tcp())
        .with_env_var("POSTGRES_USER", "citaflow")
        .with_env_var("POSTGRES_PASSWORD", "citaflow")
        .with_env_var("POSTGRES_DB", "citaflow");
    // One combined broker and controller. Clients outside reach the EXTERNAL listener through
    // a host port chosen before the start (it is what the broker advertises); the broker
    // reaches itself on BROKER inside the container.
    let kafka = image("CITAFLOW_KAFKA_IMAGE", KAFKA_IMAGE)
        .with_mapped_port(kafka_port, ContainerPort::Tcp(9092))
        .with_env_var("CLUSTER_ID", "Y2l0YWZsb3ctdGVzdHM")
        .with_env_var("KAFKA_NODE_ID", "1")
        .with_env_var("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env_var(
            "KAFKA_LISTENERS",
            "EXTERNAL://:9092,BROKER://:9094,CONTROLLER://:9093",
        )
        .with_env_var(
            "KAFKA_ADVERTISED_LISTENERS",
            format!("EXTERNAL://127.0.0.1:{kafka_port},BROKER://localhost:9094"),
        )
        .with_env_var(
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "EXTERNAL:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
        )
        .with_env_var("KAFKA_INTER_BROKER_LISTENER_NAME", "BROKER")
        .with_env_var("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env_var("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env_var("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
        .with_env_var("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
        .with_env_var("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env_var("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env_var("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env_var(
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
            "1",
        )
        .with_env_var("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR", "1")
        .with_env_var("KAFKA_HEAP_OPTS", "-Xms256m -Xmx512m");
    let registry = image("CITAFLOW_REGISTRY_IMAGE", REGISTRY_IMAGE)
        .with_exposed_port(8080.tcp())
        .with_env_var("APICURIO_STORAGE_KIND", "sql")
        .with_env_var("APICURIO_STORAGE_SQL_KIND", "h2");
    let mailpit = image("CITAFLOW_MAILPIT_IMAGE", MAILPIT_IMAGE)
        .with_exposed_port(1025.tcp())
        .with_exposed_port(8025.tcp());

    // the four start side by side; each is then polled from here until it serves
    let (postgres, kafka, registry, mailpit) = tokio::join!(
        start_one("postgres", postgres),
        start_one("kafka", kafka),
        start_one("registry", registry),
        start_one("mailpit", mailpit),
    );
    let pg_port = host_port(&postgres, 5432).await;
    let kafka_port = host_port(&kafka, 9092).await;
    let registry_port = host_port(&registry, 8080).await;
    let smtp_port = host_port(&mailpit, 1025).await;
    let mailpit_port = host_port(&mailpit, 8025).await;

    // /.dockerenv exists on some CI machines, so libraries guess a bridge address for the
    // host: the published ports are on the host's loopback, and that is what is used.
    let admin_database_url = format!("postgres://citaflow:citaflow@127.0.0.1:{pg_port}/postgres");
    let stack = Stack {
        database_url: format!("postgres://citaflow:citaflow@127.0.0.1:{pg_port}/citaflow"),
        admin_database_url,
        kafka: format!("127.0.0.1:{kafka_port}"),
        registry: format!("http://127.0.0.1:{registry_port}/apis/ccompat/v7"),
        smtp_host: "127.0.0.1".into(),
        smtp_port,
        mailpit: format!("http://127.0.0.1:{mailpit_port}"),
        jwt_secret: random_hex(32),
    };

    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("an HTTP client");
    let get_ok = |url: String| {
        let http = http.clone();
        async move { matches!(http.get(&url).send().await, Ok(r) if r.status().is_success()) }
    };
    until_ready("postgres", || async {
        PgConnection::connect(&stack.admin_database_url)
            .await
            .is_ok()
    })
    .await;
    let bootstrap = stack.kafka.clone();
    until_ready("kafka", || {
        let bootstrap = bootstrap.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let consumer: Option<BaseConsumer> = ClientConfig::new()
                    .set("bootstrap.servers", &bootstrap)
                    .create()
                    .ok();
                consumer.is_some_and(|c| {
                    c.fetch_metadata(None, Duration::from_secs(2))
                        .is_ok_and(|m| !m.brokers().is_empty())
                })
            })
            .await
            .unwrap_or(false)
        }
    })
    .await;
    until_ready("registry", || {
        get_ok(format!("{}/subjects", stack.registry))
    })
    .await;
    until_ready("mailpit", || {
        get_ok(format!("{}/api/v1/info", stack.mailpit))
    })
    .await;
    stack
}

fn random_hex(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    while out.len() < bytes * 2 {
        out.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    out.truncate(bytes * 2);
    out
}
