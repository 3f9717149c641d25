//! The CA's and the services' secrets in Secrets Manager.

use anyhow::Context as _;
use aws_config::SdkConfig;
use aws_sdk_secretsmanager::Client;
use chrono::{DateTime, Utc};
use pulsetrack_stacks::pulsetrack::{SERVICES, ServiceDef, tls};

use super::authority::{Authority, CaMaterial, Leaf};
use crate::error::aws_call_failed;

/// What [`ensure`] found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSecrets {
    /// The template's parameters: each service's secret ARN and version id.
    pub parameters: Vec<(String, String)>,
    /// Whether the CA was made by this call.
    pub ca_created: bool,
    /// The services whose certificate this call issued.
    pub issued: Vec<&'static str>,
}

/// A secret's ARN, version and value.
struct Stored {
    arn: String,
    version: String,
    value: String,
}

async fn read(client: &Client, name: &str) -> anyhow::Result<Option<Stored>> {
    match client.get_secret_value().secret_id(name).send().await {
        Ok(out) => Ok(Some(Stored {
            arn: out.arn().unwrap_or_default().to_string(),
            version: out.version_id().unwrap_or_default().to_string(),
            value: out.secret_string().unwrap_or_default().to_string(),
        })),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
        Err(e) => Err(aws_call_failed(&format!("Secrets Manager GetSecretValue {name}"), &e)),
    }
}

/// Writes `value` into secret `name` (made when `existing` is `None`); returns its ARN
/// and the new version id.
async fn write(
    client: &Client,
    name: &str,
    existing: Option<&Stored>,
    value: String,
) -> anyhow::Result<(String, String)> {
    match existing {
        Some(stored) => {
            let out = client
                .put_secret_value()
                .secret_id(&stored.arn)
                .secret_string(value)
                .send()
                .await
                .map_err(|e| aws_call_failed(&format!("Secrets Manager PutSecretValue {name}"), &e))?;
            Ok((stored.arn.clone(), out.version_id().unwrap_or_default().to_string()))
        }
        None => {
            let out = client
                .create_secret()
                .name(name)
                .description("PulseTrack internal TLS (written by the deployer)")
                .secret_string(value)
                .send()
                .await
                .map_err(|e| aws_call_failed(&format!("Secrets Manager CreateSecret {name}"), &e))?;
            Ok((out.arn().unwrap_or_default().to_string(), out.version_id().unwrap_or_default().to_string()))
        }
    }
}

/// The stack's CA: kept, or made `now`.
async fn ca(client: &Client, stack: &str, now: DateTime<Utc>) -> anyhow::Result<(Authority, bool)> {
    let name = tls::ca_secret_name(stack);
    if let Some(stored) = read(client, &name).await? {
        let material: CaMaterial =
            serde_json::from_str(&stored.value).with_context(|| format!("secret {name} is not the CA's JSON"))?;
        return Ok((Authority::from_material(stack, material, now)?, false));
    }
    let authority = Authority::create(stack, now)?;
    write(client, &name, None, serde_json::to_string(authority.material())?).await?;
    Ok((authority, true))
}

/// `def`'s secret: kept when it holds a certificate of `authority` that is current at
/// `now`, else issued now. Returns its ARN, version and whether it was issued.
async fn leaf(
    client: &Client,
    (stack, region): (&str, &str),
    def: &ServiceDef,
    authority: &Authority,
    now: DateTime<Utc>,
) -> anyhow::Result<(String, String, bool)> {
    let name = tls::secret_name(stack, def);
    let names = tls::certificate_names(def, region);
    let stored = read(client, &name).await?;
    let current = stored.as_ref().and_then(|s| serde_json::from_str::<Leaf>(&s.value).ok());
    if let (Some(stored), Some(current)) = (&stored, current)
        && !current.needs_renewal(authority.material(), &names, now)
    {
        return Ok((stored.arn.clone(), stored.version.clone(), false));
    }
    let issued = authority.issue(&names, now)?;
    let (arn, version) = write(client, &name, stored.as_ref(), serde_json::to_string(&issued)?).await?;
    Ok((arn, version, true))
}

/// `def`'s two template parameters, with the secret's ARN and version.
fn parameters(def: &ServiceDef, arn: String, version: String) -> [(String, String); 2] {
    let (arn_id, version_id) = tls::parameter_ids(def);
    [(arn_id, arn), (version_id, version)]
}

fn region(config: &SdkConfig) -> anyhow::Result<String> {
    config.region().map(|r| r.to_string()).context("no AWS region is configured")
}

/// Makes sure the CA and every service's certificate exist and are current.
pub async fn ensure(config: &SdkConfig, stack: &str) -> anyhow::Result<TlsSecrets> {
    let client = Client::new(config);
    let region = region(config)?;
    let now = Utc::now();
    let (authority, ca_created) = ca(&client, stack, now).await?;
    let mut secrets = TlsSecrets { parameters: Vec::new(), ca_created, issued: Vec::new() };
    for def in &SERVICES {
        let (arn, version, issued) = leaf(&client, (stack, &region), def, &authority, now).await?;
        secrets.parameters.extend(parameters(def, arn, version));
        if issued {
            secrets.issued.push(def.name);
        }
    }
    Ok(secrets)
}

/// The parameters as they stand, making nothing (for `diff`); `None` when a service's
/// secret does not exist yet (the stack was never deployed).
pub async fn current(config: &SdkConfig, stack: &str) -> anyhow::Result<Option<Vec<(String, String)>>> {
    let client = Client::new(config);
    let mut found = Vec::new();
    for def in &SERVICES {
        let Some(stored) = read(&client, &tls::secret_name(stack, def)).await? else { return Ok(None) };
        found.extend(parameters(def, stored.arn, stored.version));
    }
    Ok(Some(found))
}

/// Parameters that name the secrets `deploy` would make, for a change set that is only
/// read before the first deploy (`diff`): placeholder ARNs and version ids of the form
/// the template accepts.
pub fn placeholders(config: &SdkConfig, stack: &str) -> anyhow::Result<Vec<(String, String)>> {
    let region = region(config)?;
    let version = "00000000-0000-0000-0000-000000000000";
    let arn =
        |def| format!("arn:aws:secretsmanager:{region}:000000000000:secret:{}-pending", tls::secret_name(stack, def));
    Ok(SERVICES.iter().flat_map(|def| parameters(def, arn(def), version.to_string())).collect())
}

/// Deletes the services' secrets and the CA's, at once (a later deploy makes a new CA
/// and new certificates); returns the names deleted.
pub async fn delete(config: &SdkConfig, stack: &str) -> anyhow::Result<Vec<String>> {
    let client = Client::new(config);
    let names = SERVICES.iter().map(|def| tls::secret_name(stack, def)).chain([tls::ca_secret_name(stack)]);
    let mut deleted = Vec::new();
    for name in names {
        match client.delete_secret().secret_id(&name).force_delete_without_recovery(true).send().await {
            Ok(_) => deleted.push(name),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(aws_call_failed(&format!("Secrets Manager DeleteSecret {name}"), &e)),
        }
    }
    Ok(deleted)
}
