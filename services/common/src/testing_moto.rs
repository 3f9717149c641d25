//! moto, the AWS emulator the tests use (feature `testing`): a real server process.

/// A moto server (the AWS emulator the tests use in place of LocalStack's Pro
/// services), started from `scripts/moto-server.py` as a real process on a free
/// loopback port, killed when dropped. `MOTO_SERVER` names another launcher.
pub struct Moto {
    child: std::process::Child,
    pub url: String,
}

impl Moto {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        // scripts/moto-server.py: moto_server with CloudFormation honouring a load
        // balancer's `Type` (the internal NLB without Cloud Map).
        let launcher = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/moto-server.py");
        let (program, mut args) = match std::env::var("MOTO_SERVER") {
            Ok(program) => (program, vec![]),
            Err(_) => ("python3".to_string(), vec![launcher.to_string()]),
        };
        args.extend(["-H".to_string(), "127.0.0.1".to_string(), "-p".to_string(), port.to_string()]);
        let child = std::process::Command::new(program)
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("moto_server is needed (scripts/ensure-python-tools.sh installs it): {e}"));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Self { child, url }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
