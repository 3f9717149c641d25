//! An OCI image layout on disk (`oci-layout`, `blobs/sha256/…`, `index.json`): where
//! built layers, configs and manifests live before they are pushed, and a cache that
//! makes a rebuild of unchanged binaries a matter of hashing them.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use flate2::{Compression, GzBuilder};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A content address, `sha256:<hex>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Digest(String);

impl Digest {
    pub fn of(bytes: &[u8]) -> Self {
        Self(format!("sha256:{}", hex(&Sha256::digest(bytes))))
    }

    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .then(|| Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The first 12 hex digits, as `docker images` shows them.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

/// A compressed layer: its descriptor and the digest of its uncompressed tar (the
/// image config's `diff_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub descriptor: Descriptor,
    pub diff_id: Digest,
}

pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Bumped whenever the way layers are made changes, so that cached layers are not
/// reused across formats.
const LAYER_FORMAT: &str = "pulsetrack-layer-1";

/// The image layout folder.
#[derive(Debug, Clone)]
pub struct BlobStore {
    pub root: PathBuf,
}

impl BlobStore {
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(root.join("blobs/sha256")).with_context(|| format!("cannot create {}", root.display()))?;
        fs::create_dir_all(root.join("cache"))?;
        let layout = root.join("oci-layout");
        if !layout.is_file() {
            fs::write(&layout, "{\"imageLayoutVersion\":\"1.0.0\"}\n")?;
        }
        Ok(Self { root: root.to_path_buf() })
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn read(&self, digest: &Digest) -> anyhow::Result<Vec<u8>> {
        fs::read(self.path(digest)).with_context(|| format!("blob {digest} is not in {}", self.root.display()))
    }

    /// Stores `bytes` under their digest (written to a temporary file, then renamed).
    pub fn put(&self, media_type: &str, bytes: &[u8]) -> anyhow::Result<Descriptor> {
        let digest = Digest::of(bytes);
        let path = self.path(&digest);
        if !path.is_file() {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            fs::File::create(&tmp)
                .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            fs::rename(&tmp, &path)?;
        }
        Ok(Descriptor { media_type: media_type.into(), digest, size: bytes.len() as u64 })
    }

    /// A gzipped layer of the tar `tar`, cached under `key` (a digest of what the tar
    /// was made from), so that unchanged inputs are not compressed again.
    pub fn layer(&self, key: &Digest, tar: impl FnOnce() -> anyhow::Result<Vec<u8>>) -> anyhow::Result<Layer> {
        let cache = self
            .root
            .join("cache")
            .join(format!("{}.json", Digest::of(format!("{LAYER_FORMAT}{key}").as_bytes()).hex()));
        if let Some(layer) = fs::read(&cache).ok().and_then(|b| serde_json::from_slice::<Layer>(&b).ok())
            && self.path(&layer.descriptor.digest).is_file()
        {
            return Ok(layer);
        }
        let tar = tar()?;
        let diff_id = Digest::of(&tar);
        // No file name and modification time 0 in the gzip header: same tar, same bytes.
        let mut gz = GzBuilder::new().mtime(0).write(Vec::with_capacity(tar.len() / 3), Compression::default());
        gz.write_all(&tar)?;
        let compressed = gz.finish()?;
        let layer = Layer { descriptor: self.put(LAYER_MEDIA_TYPE, &compressed)?, diff_id };
        fs::write(&cache, serde_json::to_vec(&layer)?)?;
        Ok(layer)
    }

    /// Records `manifest` as the image `name` in `index.json` (replacing an earlier one).
    pub fn tag(&self, name: &str, manifest: &Descriptor) -> anyhow::Result<()> {
        let path = self.root.join("index.json");
        let mut index: serde_json::Value = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| serde_json::json!({ "schemaVersion": 2, "manifests": [] }));
        let mut manifests: Vec<serde_json::Value> = index["manifests"].as_array().cloned().unwrap_or_default();
        manifests.retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] != name);
        let mut entry = serde_json::to_value(manifest)?;
        entry["annotations"] = serde_json::json!({ "org.opencontainers.image.ref.name": name });
        manifests.push(entry);
        index["manifests"] = manifests.into();
        fs::write(&path, serde_json::to_vec_pretty(&index)?)?;
        Ok(())
    }
}

/// Digest of a file's contents, read in one go.
pub fn file_digest(path: &Path) -> anyhow::Result<(Digest, Vec<u8>)> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((Digest::of(&bytes), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_parsed_strictly() {
        let d = Digest::of(b"abc");
        assert_eq!(d.as_str(), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(Digest::parse(d.as_str()), Some(d.clone()));
        assert_eq!(d.short(), "ba7816bf8f01");
        assert_eq!(Digest::parse("sha256:XYZ"), None);
        assert_eq!(Digest::parse("md5:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), None);
    }

    #[test]
    fn layers_are_deterministic_and_cached() {
        let dir = std::env::temp_dir().join(format!("pt-store-{}", std::process::id()));
        let store = BlobStore::open(&dir).expect("store");
        let key = Digest::of(b"input");
        let a = store.layer(&key, || Ok(b"tar bytes".to_vec())).expect("layer");
        let again = store.layer(&key, || anyhow::bail!("cached: not called")).expect("cached layer");
        assert_eq!(a, again);
        let other = BlobStore::open(&dir.join("other")).expect("store");
        let b = other.layer(&key, || Ok(b"tar bytes".to_vec())).expect("layer");
        assert_eq!(a.descriptor.digest, b.descriptor.digest, "same tar, same compressed bytes");
        assert_eq!(a.diff_id, Digest::of(b"tar bytes"));
        let _ = fs::remove_dir_all(&dir);
    }
}
