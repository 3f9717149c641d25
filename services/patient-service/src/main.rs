use patient_service::{Application, config::Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pulsetrack_common::healthcheck::exit_if_requested(4000);
    pulsetrack_common::telemetry::init("patient-service");
    let app = Application::build(Config::from_env()?).await?;
    app.run().await?;
    Ok(())
}
