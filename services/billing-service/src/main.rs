use billing_service::{Application, config::Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pulsetrack_common::healthcheck::exit_if_requested(4001);
    pulsetrack_common::db::exit_if_migrate_requested(
        billing_service::SERVICE,
        Config::database_from_env,
        &billing_service::MIGRATOR,
    )
    .await;
    pulsetrack_common::audit::exit_if_verify_requested(billing_service::SERVICE, Config::trail_from_env).await;
    pulsetrack_common::telemetry::init(billing_service::SERVICE);
    let app = Application::build(Config::from_env()?).await?;
    app.run().await
}
