//! A moto server for the tests: the LocalStack-compatible AWS endpoint, started as a
//! real process on a free loopback port.

#![allow(dead_code)]

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
        let child = Command::new(std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into()))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
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
