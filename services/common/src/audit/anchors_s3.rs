//! Anchors in an S3 bucket with Object Lock (`s3://<bucket>/<prefix>`): one object per
//! anchor, under a key that sorts newest first, so that the newest is the first one
//! listed. The bucket's default retention locks each object as it is written: the
//! task role may put and read anchors, and nobody may delete or overwrite one until
//! its retention ends.

use aws_sdk_s3::{Client, primitives::ByteStream, types::ChecksumAlgorithm};
use tokio::sync::OnceCell;

use super::anchor::{Anchor, AnchorError};

/// How many of the newest anchors `verify` reads (replicas anchor side by side: the
/// newest by sequence number is among the last few written).
const NEWEST_READ: i32 = 8;

#[derive(Debug)]
pub struct S3Anchors {
    bucket: String,
    prefix: String,
    client: OnceCell<Client>,
}

fn failed(call: &'static str) -> impl Fn(&dyn std::fmt::Display) -> AnchorError {
    move |e| AnchorError::S3(format!("{call}: {e}"))
}

impl S3Anchors {
    /// `<bucket>/<prefix>` (the part after `s3://`).
    pub fn parse(rest: &str) -> Result<Self, String> {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty()
            || !bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.".contains(c))
        {
            return Err("`s3://<bucket>/<prefix>` needs a bucket name (lowercase letters, digits, `-` and `.`)".into());
        }
        Ok(Self { bucket: bucket.into(), prefix: prefix.trim_matches('/').into(), client: OnceCell::new() })
    }

    /// These anchors through `client` instead of the default chain's (tests and tools).
    pub fn with_client(self, client: Client) -> Self {
        Self { client: OnceCell::new_with(Some(client)), ..self }
    }

    /// The client, from the default credential chain (the task role on ECS). An
    /// endpoint set in the environment (an emulator) is reached by path.
    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                let emulated =
                    ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"].iter().any(|v| std::env::var_os(v).is_some());
                Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(emulated).build())
            })
            .await
    }

    fn folder(&self, service: &str) -> String {
        if self.prefix.is_empty() { format!("{service}/") } else { format!("{}/{service}/", self.prefix) }
    }

    /// The key of `anchor`: newer anchors sort first (the time counted down).
    fn key(&self, anchor: &Anchor) -> String {
        let countdown = u64::MAX - u64::try_from(anchor.at.timestamp_micros()).unwrap_or(0);
        format!("{}{countdown:020}-{}.json", self.folder(&anchor.service), anchor.seq)
    }

    pub async fn append(&self, anchor: &Anchor) -> Result<(), AnchorError> {
        let body = serde_json::to_vec(anchor).map_err(|e| AnchorError::S3(e.to_string()))?;
        self.client()
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(anchor))
            .content_type("application/json")
            // A bucket with Object Lock takes only writes with a checksum.
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| failed("PutObject")(&aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    /// The newest anchors of `service`, parsed (`None`: an object that is no anchor, or
    /// one under a name that is not its own).
    pub async fn newest_candidates(&self, service: &str) -> Result<Vec<Option<Anchor>>, AnchorError> {
        let client = self.client().await;
        let listed = client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.folder(service))
            .max_keys(NEWEST_READ)
            .send()
            .await
            .map_err(|e| failed("ListObjectsV2")(&aws_sdk_s3::error::DisplayErrorContext(e)))?;
        let mut out = Vec::new();
        for key in listed.contents().iter().filter_map(|o| o.key()) {
            let object = client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| failed("GetObject")(&aws_sdk_s3::error::DisplayErrorContext(e)))?;
            let bytes = object.body.collect().await.map_err(|e| failed("GetObject body")(&e))?.into_bytes();
            // An anchor counts only under the name its own time and sequence number
            // give it: an old anchor copied under a name that sorts first is refused.
            let anchor = serde_json::from_slice::<Anchor>(&bytes).ok().filter(|a| self.key(a) == key);
            out.push(anchor);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_and_prefix_are_parsed_and_keys_sort_newest_first() {
        let s3 = S3Anchors::parse("pulsetrack-anchors/trails/").expect("valid");
        assert_eq!((s3.bucket.as_str(), s3.prefix.as_str()), ("pulsetrack-anchors", "trails"));
        assert!(S3Anchors::parse("").is_err());
        assert!(S3Anchors::parse("Upper/x").is_err());
        let anchor = |micros: i64| Anchor {
            service: "billing-service".into(),
            seq: 1,
            hash: vec![],
            at: chrono::DateTime::from_timestamp_micros(micros).expect("time"),
            signature: vec![],
        };
        let (older, newer) = (s3.key(&anchor(1_000)), s3.key(&anchor(2_000)));
        assert!(newer < older, "{newer} sorts before {older}");
        assert!(older.starts_with("trails/billing-service/"));
    }
}
