//! What running a private PostgreSQL on this machine takes, shared by `deployer up`
//! (its private cluster) and the tests (clusters with TLS): finding the server tools,
//! a CA and a server certificate made with the openssl CLI, and decoding the
//! percent-encoded parts of a Postgres URL.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} holds no initdb and pg_ctl")]
    NoToolsIn(PathBuf),
    #[error(
        "PostgreSQL's server tools (initdb, pg_ctl) were not found: install them (Debian/Ubuntu: \
         `apt-get install postgresql`)"
    )]
    NoTools,
    #[error("the TLS certificates need the openssl CLI (Debian/Ubuntu: `apt-get install openssl`): {0}")]
    NoOpenssl(std::io::Error),
    #[error("openssl {args} failed: {stderr}")]
    Openssl { args: String, stderr: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Finds `initdb`/`pg_ctl`: in `explicit` when given; else on PATH, in
/// `pg_config --bindir`, then Debian's newest /usr/lib/postgresql/<major>/bin.
pub fn find_bin_dir(explicit: Option<&Path>) -> Result<PathBuf, Error> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = explicit {
        return if has_tools(dir) { Ok(dir.to_path_buf()) } else { Err(Error::NoToolsIn(dir.to_path_buf())) };
    }
    let mut candidates: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").stderr(Stdio::null()).output() {
        candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    debian.sort();
    candidates.extend(debian.into_iter().rev().map(|(_, p)| p));
    candidates.into_iter().find(|d| has_tools(d)).ok_or(Error::NoTools)
}

/// Decodes `%XX` escapes; `None` when one is malformed or the result is not UTF-8.
pub fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// EC P-256 keys, unencrypted.
const EC_KEY: [&str; 5] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/// Makes a self-signed CA in `dir`: `<stem>.pem` and its key `<stem>.key`.
pub fn make_ca(dir: &Path, stem: &str, common_name: &str, days: u32) -> Result<(), Error> {
    let (key, pem, subject, days) =
        (format!("{stem}.key"), format!("{stem}.pem"), format!("/CN={common_name}"), days.to_string());
    let mut args = vec!["req", "-x509"];
    args.extend(EC_KEY);
    args.extend(["-keyout", &key, "-out", &pem, "-days", &days, "-subj", &subject]);
    args.extend(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    openssl(dir, &args)
}

/// A server certificate to make with [`make_server_certificate`].
pub struct ServerCertificate<'a> {
    /// The certificate's subject alternative names, as openssl writes them
    /// (`IP:127.0.0.1`, `DNS:localhost`); clients check the host they dial against them.
    pub names: &'a [&'a str],
    pub days: u32,
}

/// Makes `server.pem` and its key `server.key` in `dir`, signed by the CA
/// `<ca_stem>.pem`/`<ca_stem>.key` made there by [`make_ca`].
pub fn make_server_certificate(dir: &Path, ca_stem: &str, server: &ServerCertificate<'_>) -> Result<(), Error> {
    let ext = dir.join("server.ext");
    let extensions = format!(
        "subjectAltName={}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        server.names.join(",")
    );
    std::fs::write(&ext, extensions).map_err(|source| Error::Io { path: ext.clone(), source })?;
    let subject = format!("/CN={}", server.names.first().and_then(|n| n.split_once(':')).map_or("server", |(_, v)| v));
    let mut request = vec!["req"];
    request.extend(EC_KEY);
    request.extend(["-keyout", "server.key", "-out", "server.csr", "-subj", &subject]);
    openssl(dir, &request)?;
    let (ca_pem, ca_key, days) = (format!("{ca_stem}.pem"), format!("{ca_stem}.key"), server.days.to_string());
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-set_serial",
            "2",
            "-days",
            &days,
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    )?;
    for leftover in ["server.csr", "server.ext"] {
        let _ = std::fs::remove_file(dir.join(leftover));
    }
    Ok(())
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), Error> {
    let out =
        Command::new("openssl").args(args).current_dir(dir).stdin(Stdio::null()).output().map_err(Error::NoOpenssl)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Openssl { args: args.join(" "), stderr: String::from_utf8_lossy(&out.stderr).trim().to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_are_decoded_and_bad_ones_refused() {
        assert_eq!(percent_decode("p%40ss%3Aw%2Frd").as_deref(), Some("p@ss:w/rd"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("bad%4"), None);
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
    }

    #[test]
    fn the_server_certificate_is_signed_by_the_ca_for_the_given_names() {
        let dir = std::env::temp_dir().join(format!("pt-localpg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        make_ca(&dir, "ca", "test CA", 1).expect("CA");
        make_ca(&dir, "other-ca", "other test CA", 1).expect("another CA");
        let server = ServerCertificate { names: &["IP:127.0.0.1", "DNS:localhost"], days: 1 };
        make_server_certificate(&dir, "ca", &server).expect("server certificate");
        let verify = |ca: &str| {
            Command::new("openssl")
                .args(["verify", "-CAfile", ca, "server.pem"])
                .current_dir(&dir)
                .output()
                .expect("openssl runs")
                .status
                .success()
        };
        assert!(verify("ca.pem"), "signed by its CA");
        assert!(!verify("other-ca.pem"), "not by another");
        let text = Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in", "server.pem"])
            .current_dir(&dir)
            .output()
            .expect("openssl runs");
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("IP Address:127.0.0.1") && text.contains("DNS:localhost"), "{text}");
        assert!(!dir.join("server.csr").exists() && dir.join("server.key").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_given_folder_without_the_tools_is_an_error() {
        let err = find_bin_dir(Some(Path::new("/nonexistent"))).expect_err("no tools there");
        assert!(matches!(err, Error::NoToolsIn(_)), "{err}");
    }
}
