//! What the deployer's tests share: moto (the LocalStack-compatible AWS endpoint, a real
//! process, from `pulsetrack_common::testing`) and CloudFormation calls to it, a real
//! image registry, and the system helpers.

#![allow(dead_code)]

pub mod aws_emulator;
pub mod system;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

pub use pulsetrack_common::testing_moto::Moto;

/// A CloudFormation query-API call to `moto`. moto does not check signatures; the
/// header names the service so that moto routes the call.
pub fn cloudformation(moto: &Moto, params: &[(&str, &str)]) -> String {
    reqwest::blocking::Client::new()
        .post(&moto.url)
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/cloudformation/aws4_request, SignedHeaders=host, Signature=0",
        )
        .form(&[params, &[("Version", "2010-05-15")]].concat())
        .send()
        .and_then(|r| r.text())
        .expect("moto answers")
}

/// A Docker Distribution registry (Debian's `docker-registry`, a real OCI registry) on
/// a free loopback port, with its storage in a temporary folder.
pub struct ImageRegistry {
    child: std::process::Child,
    root: std::path::PathBuf,
    /// `127.0.0.1:<port>`
    pub addr: String,
}

impl ImageRegistry {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let root = std::env::temp_dir().join(format!("pt-registry-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&root).expect("registry folder");
        let addr = format!("127.0.0.1:{port}");
        let config = root.join("config.yml");
        std::fs::write(&config, deployer::local::containers::registry_config(&addr, &root.join("data")))
            .expect("config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("docker-registry is needed (scripts/ensure-containers.sh installs it): {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, root, addr }
    }
}

impl Drop for ImageRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
