use citaflow_platform::{Settings, shutdown, telemetry};
use notifier::Application;

// One thread: a replica sends one message at a time, and on a small machine the hand-offs
// between worker threads cost more than they give (most of its CPU went to them).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // rustls may see more than one crypto backend in the dependency graph: pick one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let settings = Settings::load()?;
    telemetry::init("notifier", &settings.log);
    Application::build(settings)
        .await?
        .run_until_stopped(shutdown::on_signal())
        .await
}
