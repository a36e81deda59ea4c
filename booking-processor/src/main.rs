use booking_processor::Application;
use citaflow_platform::{Settings, shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    telemetry::init("booking-processor", &settings.log);
    Application::build(settings)
        .await?
        .run_until_stopped(shutdown::on_signal())
        .await
}
