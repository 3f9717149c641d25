use api_gateway::{Application, config::Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pulsetrack_common::healthcheck::exit_if_requested(4004);
    pulsetrack_common::telemetry::init("api-gateway");
    let app = Application::build(Config::from_env()?).await?;
    app.run().await?;
    Ok(())
}
