use auth_service::{Application, config::Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pulsetrack_common::healthcheck::exit_if_requested(4005);
    pulsetrack_common::db::exit_if_migrate_requested(
        "auth-service",
        Config::database_from_env,
        &auth_service::MIGRATOR,
    )
    .await;
    pulsetrack_common::telemetry::init("auth-service");
    let config = Config::from_env()?;
    let app = Application::build(config).await?;
    app.run().await?;
    Ok(())
}
