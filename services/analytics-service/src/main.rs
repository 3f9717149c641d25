use analytics_service::{Application, config::Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pulsetrack_common::healthcheck::exit_if_requested(4002);
    pulsetrack_common::telemetry::init("analytics-service");
    let app = Application::build(Config::from_env()?).await?;
    app.run().await
}
