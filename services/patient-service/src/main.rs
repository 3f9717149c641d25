use patient_service::{Application, config::Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pulsetrack_common::healthcheck::exit_if_requested(4000);
    pulsetrack_common::db::exit_if_migrate_requested(
        patient_service::SERVICE,
        Config::database_from_env,
        &patient_service::MIGRATOR,
    )
    .await;
    pulsetrack_common::audit::exit_if_verify_requested(patient_service::SERVICE, Config::trail_from_env).await;
    pulsetrack_common::telemetry::init(patient_service::SERVICE);
    let app = Application::build(Config::from_env()?).await?;
    app.run().await?;
    Ok(())
}
