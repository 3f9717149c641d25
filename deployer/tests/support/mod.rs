//! A moto server for the tests: the LocalStack-compatible AWS endpoint, started as a
//! real process on a free loopback port.

#![allow(dead_code)]

pub mod aws_emulator;
pub mod system;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// A moto server (the LocalStack-compatible AWS emulator) on a free loopback port.
pub struct Moto {
    child: std::process::Child,
    pub url: String,
}

impl Moto {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        // scripts/moto-server.py: moto_server with CloudFormation honouring a load
        // balancer's `Type` (the internal NLB without Cloud Map); MOTO_SERVER overrides.
        let launcher = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/moto-server.py");
        let (program, mut args) = match std::env::var("MOTO_SERVER") {
            Ok(program) => (program, vec![]),
            Err(_) => ("python3".to_string(), vec![launcher.to_string()]),
        };
        args.extend(["-H".to_string(), "127.0.0.1".to_string(), "-p".to_string(), port.to_string()]);
        let child = Command::new(program)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("moto_server is needed (pip install 'moto[server]'): {e}"));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, url }
    }

    /// A CloudFormation query-API call. moto does not check signatures; the header
    /// names the service so that moto routes the call.
    pub fn cloudformation(&self, params: &[(&str, &str)]) -> String {
        reqwest::blocking::Client::new()
            .post(&self.url)
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/cloudformation/aws4_request, SignedHeaders=host, Signature=0",
            )
            .form(&[params, &[("Version", "2010-05-15")]].concat())
            .send()
            .and_then(|r| r.text())
            .expect("moto answers")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
