//! Service binaries run as real child processes (configured only through `CITAFLOW__*`
//! environment variables, like in production), so tests can SIGKILL them mid-flight.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use citaflow_platform::Settings;
use secrecy::ExposeSecret;

/// Where cargo put the binaries (`./dev test` builds them before running the tests).
pub fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`./dev test` does)",
        path.display()
    );
    path
}

/// The environment a service needs to run with `settings`.
pub fn environment(settings: &Settings) -> Vec<(String, String)> {
    let delays = settings
        .topics
        .retry_delays_ms
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut env = vec![
        (
            "CITAFLOW__DATABASE__URL",
            settings.database.url.expose_secret().to_owned(),
        ),
        (
            "CITAFLOW__DATABASE__STATEMENT_TIMEOUT_MS",
            settings.database.statement_timeout_ms.to_string(),
        ),
        (
            "CITAFLOW__KAFKA__BOOTSTRAP_SERVERS",
            settings.kafka.bootstrap_servers.clone(),
        ),
        ("CITAFLOW__REGISTRY__URL", settings.registry.url.clone()),
        (
            "CITAFLOW__TOPICS__REQUESTS",
            settings.topics.requests.clone(),
        ),
        ("CITAFLOW__TOPICS__EVENTS", settings.topics.events.clone()),
        ("CITAFLOW__TOPICS__DLQ", settings.topics.dlq.clone()),
        ("CITAFLOW__TOPICS__RETRY_DELAYS_MS", format!("[{delays}]")),
        (
            "CITAFLOW__PROCESSOR__GROUP_ID",
            settings.processor.group_id.clone(),
        ),
        (
            "CITAFLOW__PROCESSOR__DRAIN_TIMEOUT_MS",
            settings.processor.drain_timeout_ms.to_string(),
        ),
        (
            "CITAFLOW__PROCESSOR__BATCH_WAIT_MS",
            settings.processor.batch_wait_ms.to_string(),
        ),
        ("CITAFLOW__SMTP__HOST", settings.smtp.host.clone()),
        ("CITAFLOW__SMTP__PORT", settings.smtp.port.to_string()),
        ("CITAFLOW__SMS__BASE_URL", settings.sms.base_url.clone()),
        (
            "CITAFLOW__SMS__ACCOUNT_SID",
            settings.sms.account_sid.clone(),
        ),
        ("CITAFLOW__SMS__FROM", settings.sms.from.clone()),
        ("CITAFLOW__SMTP__FROM", settings.smtp.from.clone()),
        (
            "CITAFLOW__SMTP__TLS",
            format!("{:?}", settings.smtp.tls).to_lowercase(),
        ),
        (
            "CITAFLOW__NOTIFIER__CHANNEL",
            settings.notifier.channel.as_str().to_owned(),
        ),
        ("CITAFLOW__HTTP__PORT", "0".to_owned()),
        ("CITAFLOW__LOG__LEVEL", "warn".to_owned()),
    ];
    if let Some(group) = &settings.notifier.group_id {
        env.push(("CITAFLOW__NOTIFIER__GROUP_ID", group.clone()));
    }
    if let Some(secret) = &settings.auth.jwt_secret {
        env.push((
            "CITAFLOW__AUTH__JWT_SECRET",
            secret.expose_secret().to_owned(),
        ));
    }
    if let Some(token) = &settings.sms.auth_token {
        env.push((
            "CITAFLOW__SMS__AUTH_TOKEN",
            token.expose_secret().to_owned(),
        ));
    }
    if let Some(url) = &settings.smtp.message_log_url {
        env.push(("CITAFLOW__SMTP__MESSAGE_LOG_URL", url.clone()));
    }
    if let Some(user) = &settings.smtp.username {
        env.push(("CITAFLOW__SMTP__USERNAME", user.clone()));
    }
    if let Some(password) = &settings.smtp.password {
        env.push((
            "CITAFLOW__SMTP__PASSWORD",
            password.expose_secret().to_owned(),
        ));
    }
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// A running service process; killed when dropped.
pub struct ServiceProcess {
    child: Child,
    /// Its `http.port`: a processor's or notifier's ops listener (`/metrics`, `/health/*`).
    pub ops_port: u16,
}

impl ServiceProcess {
    pub fn start(binary_name: &str, settings: &Settings) -> ServiceProcess {
        Self::start_with(binary_name, settings, &[])
    }

    /// Like [`ServiceProcess::start`], with more variables (they win over the settings').
    pub fn start_with(
        binary_name: &str,
        settings: &Settings,
        extra: &[(&str, String)],
    ) -> ServiceProcess {
        let ops_port = crate::free_port();
        let mut command = Command::new(binary(binary_name));
        for (key, _) in std::env::vars() {
            if key.starts_with("CITAFLOW__") || key == "CITAFLOW_CONFIG" {
                command.env_remove(key);
            }
        }
        command
            .envs(environment(settings))
            // The processor and the notifier serve their ops endpoints on `http.port`.
            .env("CITAFLOW__HTTP__PORT", ops_port.to_string())
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        ServiceProcess {
            child: command.spawn().expect("start service process"),
            ops_port,
        }
    }

    /// The batches this (processor) process has decided so far, from its `/metrics`.
    pub async fn batches(&self, settings: &Settings) -> crate::Batches {
        let url = format!("http://127.0.0.1:{}/metrics", self.ops_port);
        let text = match reqwest::get(&url).await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        crate::Batches::parse(&text, &settings.processor.group_id)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no draining, no final commit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait up to `within` for a clean exit; answers the exit status.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc_kill(self.child.id() as i32, 15);
        }
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
