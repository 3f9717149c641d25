use auth_service::{Application, config::Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pulsetrack_common::healthcheck::exit_if_requested(4005);
    pulsetrack_common::db::exit_if_migrate_requested(
        auth_service::SERVICE,
        Config::database_from_env,
        &auth_service::MIGRATOR,
    )
    .await;
    pulsetrack_common::audit::exit_if_verify_requested(auth_service::SERVICE, Config::trail_from_env).await;
    pulsetrack_common::telemetry::init(auth_service::SERVICE);
    let config = Config::from_env()?;
    let app = Application::build(config).await?;
    app.run().await?;
    Ok(())
}
