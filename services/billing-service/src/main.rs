use billing_service::{Application, config::Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pulsetrack_common::healthcheck::exit_if_requested(4001);
    pulsetrack_common::telemetry::init("billing-service");
    let app = Application::build(Config::from_env()?).await?;
    app.run().await
}
