//! Why a `dcc-router` command failed: [`CliError`], and [`report`], the text `run` prints.
//!
//! Why typed and not `String`: the error a command returns keeps what caused it (the I/O
//! error, the configuration or TLS error, the admin client's), so an embedder or a test can
//! match on it and walk `source()`, while the printed text stays what an operator reads: the
//! file, the line or the flag, then the cause.

use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::client::admin::AdminClientError;
use crate::ingress::tls::TlsError;
use crate::server::config::{ConfigError, InvalidValue};
use crate::server::ServeError;

use super::device_file::DeviceFileError;

/// Why a `dcc-router` command failed. Every variant exits 1 (clap's usage errors exit 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The async runtime could not be started.
    #[error("cannot start the async runtime: {source}")]
    Runtime {
        /// Why.
        source: std::io::Error,
    },
    /// The configuration file (`serve --config`) was refused; the error names the file and
    /// line.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An address flag (`--metrics`, `--duis`, `--duis-plain`) is not an address.
    #[error("--{flag} {value:?}: {source}")]
    FlagAddress {
        /// The flag, without `--`.
        flag: &'static str,
        /// What was given.
        value: String,
        /// Why.
        source: std::net::AddrParseError,
    },
    /// A flag's value is out of range (the key is the flag's, `_` for `-`).
    #[error("--{}: {source}", source.key.replace('_', "-"))]
    FlagValue {
        /// The range check that failed.
        source: InvalidValue,
    },
    /// A configuration value is out of range after the flags were applied, and no flag set
    /// it.
    #[error(transparent)]
    Value(InvalidValue),
    /// The server did not start.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// A certificate argument is neither a certificate id nor a readable file.
    #[error("{arg}: not a certificate id, and {source}")]
    CertArgRead {
        /// The argument.
        arg: String,
        /// Why the file could not be read.
        source: std::io::Error,
    },
    /// A certificate argument's file is not a certificate.
    #[error("{arg}: {source}")]
    Certificate {
        /// The argument (the file).
        arg: String,
        /// Why.
        source: dcc_signing::pki::PkiError,
    },
    /// A duration (`--for`) is not a number with a unit.
    #[error("{text:?}: expected e.g. 90s, 30m, 12h, 14d")]
    Duration {
        /// What was given.
        text: String,
        /// Why the number did not parse.
        source: std::num::ParseIntError,
    },
    /// A duration's unit is none of s, m, h, d.
    #[error("{text:?}: unit must be s, m, h or d")]
    DurationUnit {
        /// What was given.
        text: String,
    },
    /// A duration too long to count in seconds from now.
    #[error("{text:?}: too long")]
    DurationTooLong {
        /// What was given.
        text: String,
    },
    /// A file named on the command line could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file that must be PEM is not text.
    #[error("{}: not a PEM file", path.display())]
    NotPem {
        /// The file.
        path: PathBuf,
        /// Where it stops being UTF-8.
        source: std::string::FromUtf8Error,
    },
    /// A key operation without `--reason`.
    #[error("admin {op} needs --reason (and --pma-ref)")]
    NeedsReason {
        /// The operation (`key import`, `key retire`).
        op: &'static str,
    },
    /// The admin User's TLS material could not be loaded (the error names the file).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The admin call got no answer. (Boxed, as in `ImportStopped`: the client's errors hold
    /// quinn's, and every `Result` here would carry their size.)
    #[error(transparent)]
    Admin(Box<AdminClientError>),
    /// The answer could not be printed as JSON.
    #[error("cannot print the answer as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The server refused the admin request; its message was printed already.
    #[error("{message}")]
    Refused {
        /// The server's message.
        message: String,
    },
    /// A device file (`import-devices`) was refused; the error names the file and line.
    #[error(transparent)]
    DeviceFile(#[from] DeviceFileError),
    /// A bulk import stopped: the connection failed after `done` devices.
    #[error("{}: stopped after {done} devices (all of them durable): {source}", file.display())]
    ImportStopped {
        /// The device file.
        file: PathBuf,
        /// Devices imported before (durable).
        done: usize,
        /// Why.
        source: Box<AdminClientError>,
    },
    /// A bulk import stopped: the server refused a batch after `done` devices.
    #[error("{}: stopped after {done} devices (all of them durable): {message}", file.display())]
    ImportRefused {
        /// The device file.
        file: PathBuf,
        /// Devices imported before (durable).
        done: usize,
        /// The server's message.
        message: String,
    },
}

impl From<AdminClientError> for CliError {
    fn from(e: AdminClientError) -> Self {
        CliError::Admin(Box::new(e))
    }
}

impl CliError {
    /// A stable code (for scripts and logs; the text may be reworded).
    pub fn code(&self) -> &'static str {
        match self {
            CliError::Runtime { .. } => "runtime",
            CliError::Config(_) => "config",
            CliError::FlagAddress { .. } => "flag-address",
            CliError::FlagValue { .. } => "flag-value",
            CliError::Value(_) => "config-value",
            CliError::Serve(_) => "serve",
            CliError::CertArgRead { .. } => "cert-arg-read",
            CliError::Certificate { .. } => "certificate",
            CliError::Duration { .. } => "duration",
            CliError::DurationUnit { .. } => "duration-unit",
            CliError::DurationTooLong { .. } => "duration-too-long",
            CliError::Read { .. } => "read",
            CliError::NotPem { .. } => "not-pem",
            CliError::NeedsReason { .. } => "needs-reason",
            CliError::Tls(_) => "tls",
            CliError::Admin(_) => "admin-call",
            CliError::Json(_) => "json",
            CliError::Refused { .. } => "refused",
            CliError::DeviceFile(_) => "device-file",
            CliError::ImportStopped { .. } => "import-stopped",
            CliError::ImportRefused { .. } => "import-refused",
        }
    }
}

/// The text printed for an error: its `Display`, then each cause in its `source()` chain that
/// the text does not already say, one a line (`  caused by: …`). Why the check: most errors
/// here put their cause in their own text (`FILE: No such file or directory`), and an operator
/// should read each cause once.
///
/// A cause counts as said when its text is in the report, or its text after its own context
/// (`policy line 2: `, up to the first `: `) is: an error that words its cause's context its
/// own way (`FILE:2: …` for the policy's `policy line 2: …`) does not get it twice.
pub fn report(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let said = cause.to_string();
        let known = said.is_empty()
            || text.contains(&said)
            || said
                .split_once(": ")
                .is_some_and(|(_, rest)| !rest.is_empty() && text.contains(rest));
        if !known {
            let _ = write!(text, "\n  caused by: {said}");
        }
        next = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// An error whose text leaves out its cause.
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] CliError);

    #[test]
    fn a_report_says_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let e = CliError::Read {
            path: "a.pem".into(),
            source: io,
        };
        // The cause is in the text already: nothing is added.
        assert_eq!(report(&e), "a.pem: No such file");
        assert!(e.source().is_some(), "the source is kept");
        assert_eq!(e.code(), "read");
        // A text without its cause gets it, once, on its own line.
        let outer = Outer(e);
        assert_eq!(report(&outer), "outer\n  caused by: a.pem: No such file");
        // A cause the text omits (where the bytes stop being UTF-8) is added.
        let bad = String::from_utf8(vec![b'a', 0xff]).unwrap_err();
        let e = CliError::NotPem {
            path: "c.pem".into(),
            source: bad,
        };
        let r = report(&e);
        assert!(
            r.starts_with("c.pem: not a PEM file\n  caused by: invalid utf-8"),
            "{r}"
        );
    }

    /// The policy error's `policy line 2: …` is said by the server's `FILE:2: …` already.
    #[test]
    fn a_cause_reworded_in_the_message_is_not_repeated() {
        let e = CliError::Serve(ServeError::Policy {
            path: "p.toml".into(),
            source: crate::PolicyError::Invalid {
                line: 2,
                reason: "unknown key `lanes2`".into(),
            },
        });
        assert!(e.source().is_some());
        assert_eq!(report(&e), "p.toml:2: unknown key `lanes2`");
    }

    #[test]
    fn flag_values_are_named_as_flags() {
        let e = CliError::FlagValue {
            source: InvalidValue {
                key: "demo_certs_per_user",
                value: 0,
                range: "1..=16".into(),
            },
        };
        assert_eq!(
            e.to_string(),
            "--demo-certs-per-user: demo_certs_per_user = 0 is out of range 1..=16"
        );
    }
}
