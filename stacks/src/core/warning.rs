//! Warnings: what synthesis allows but the user should know before deploying.

use std::fmt;

/// Something synthesis allows but the user should know (CDK's warning annotations):
/// `synth` and `deploy` print these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The construct it is about.
    pub path: String,
    pub kind: WarningKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// The public entry is plain HTTP: passwords, tokens and records cross the internet in clear.
    PlainHttpEntry { port: u16 },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            WarningKind::PlainHttpEntry { port } => write!(
                f,
                "{}: the public entry is plain HTTP on :{port}; passwords, tokens and patient records cross \
                 the internet unencrypted. Pass -c certificate-arn=<ACM certificate ARN> for HTTPS",
                self.path
            ),
        }
    }
}
