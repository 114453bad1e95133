//! The `dcc-sign` command line, as a library module so that it is testable in-process; the
//! binary (`src/bin/dcc-sign.rs`) only calls [`main_with_args`].
//!
//! ```text
//! dcc-sign pki init --dir demo-pki
//! dcc-sign sign --key demo-pki/users/supplier-a/key.pem --cert demo-pki/users/supplier-a/cert.pem \
//!     --srv 2.2 --target 00-DB-12-34-56-78-00-04 --counter 1 --body-hex 0102 --out req.dcsr
//! dcc-sign verify --ca demo-pki/ca/root.pem --cert demo-pki/users/supplier-a/cert.pem req.dcsr
//! dcc-sign inspect req.dcsr --json
//! dcc-sign crl --ca-dir demo-pki/ca --revoke-cert demo-pki/users/supplier-b/cert.pem --out crl.pem
//! dcc-sign duis sign --key k.key --cert c.pem request.xml -o signed.xml
//! dcc-sign duis verify --certs certs/ signed.xml
//! ```
//!
//! Errors are one line on stderr (`dcc-sign: …`) and a non-zero exit code: 1 when something
//! was refused or failed, 2 for a usage error. Warnings (`dcc-sign: warning: …`) are one line
//! each on stderr and do not change the exit code.

mod crl_cmd;
mod duis_cmd;
mod inspect;
mod pki_init;
mod sign_cmd;
mod verify_cmd;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

pub use crl_cmd::CrlArgs;
pub use duis_cmd::{DuisArgs, DuisCommand, DuisSignArgs, DuisVerifyArgs};
pub use inspect::InspectArgs;
pub use pki_init::{PkiArgs, PkiCommand, PkiInitArgs};
pub use sign_cmd::SignArgs;
pub use verify_cmd::VerifyArgs;

/// `dcc-sign`: sign, verify and inspect DCC Service Request envelopes; run a demo SMKI PKI.
#[derive(Debug, Parser)]
#[command(
    name = "dcc-sign",
    version,
    about = "Sign, verify and inspect DCC Service Request envelopes and DUIS XML; run a demo SMKI PKI",
    after_help = "Examples:\n  \
        dcc-sign pki init --dir demo-pki\n  \
        dcc-sign sign --key demo-pki/users/supplier-a/key.pem --cert demo-pki/users/supplier-a/cert.pem \\\n      \
            --srv 2.2 --target 00-DB-12-34-56-78-00-04 --counter 1 --out req.dcsr\n  \
        dcc-sign verify --ca demo-pki/ca/root.pem --cert demo-pki/users/supplier-a/cert.pem req.dcsr\n  \
        dcc-sign inspect req.dcsr\n  \
        dcc-sign crl --ca-dir demo-pki/ca --revoke 4F3A... --out crl.pem\n  \
        dcc-sign duis verify --certs certs/ signed-duis.xml"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Demo PKI management.
    #[command(after_help = "Examples:\n  dcc-sign pki init --dir demo-pki\n  \
        dcc-sign pki init --help")]
    Pki(PkiArgs),
    /// Sign one Service Request envelope.
    Sign(SignArgs),
    /// Verify an envelope: certificate chain, validity and signature.
    Verify(VerifyArgs),
    /// Print every field of an envelope.
    Inspect(InspectArgs),
    /// Issue a CRL from a demo PKI's issuing CA.
    Crl(CrlArgs),
    /// DUIS XML: sign and verify XML-DSig as DCC Boxed does.
    #[command(after_help = "Examples:\n  \
        dcc-sign duis sign --key k.key --cert c.pem request.xml -o signed.xml\n  \
        dcc-sign duis verify --certs certs/ signed.xml")]
    Duis(DuisArgs),
}

/// A failure, reported as one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

impl CliError {
    fn new(msg: impl Into<String>) -> Self {
        CliError(msg.into())
    }
}

impl From<crate::pki::PkiError> for CliError {
    fn from(e: crate::pki::PkiError) -> Self {
        CliError(e.to_string())
    }
}

/// Parses `args` (program name first) and runs the command, writing normal output to `out`
/// and the one-line error to `err`. Returns the process exit code.
pub fn main_with_args<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = write!(out, "{}", e.render());
                    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                        2
                    } else {
                        0
                    }
                }
                _ => {
                    let text = e.render().to_string();
                    let first = text
                        .lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("invalid arguments")
                        .trim_start_matches("error: ");
                    let _ = writeln!(err, "dcc-sign: {first} (see --help)");
                    2
                }
            };
        }
    };
    match run(cli, out, err) {
        Ok(()) => 0,
        Err(e) => {
            // One line, whatever the error text holds.
            let line = e.0.replace('\n', " ");
            let _ = writeln!(err, "dcc-sign: {line}");
            1
        }
    }
}

/// Runs a parsed command, writing normal output to `out` and warnings (one line each, such
/// as what `sign --force` signed anyway) to `err`.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    match cli.command {
        Command::Pki(a) => pki_init::run(a, out),
        Command::Sign(a) => sign_cmd::run(a, out, err),
        Command::Verify(a) => verify_cmd::run(a, out),
        Command::Inspect(a) => inspect::run(a, out),
        Command::Crl(a) => crl_cmd::run(a, out),
        Command::Duis(a) => duis_cmd::run(a, out, err),
    }
}

/// Reads a file of at most `max` bytes.
pub(crate) fn read_bounded(path: &Path, max: usize) -> Result<Vec<u8>, CliError> {
    use std::io::Read;
    let f =
        std::fs::File::open(path).map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
    let mut buf = Vec::new();
    f.take(max as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
    if buf.len() > max {
        return Err(CliError::new(format!(
            "{}: larger than {max} bytes",
            path.display()
        )));
    }
    Ok(buf)
}

/// Decodes the envelope read from `path`, naming the file and the defect in the error.
pub(crate) fn decode_envelope<'a>(
    path: &Path,
    bytes: &'a [u8],
) -> Result<crate::envelope::Envelope<'a>, CliError> {
    crate::envelope::Envelope::decode(bytes).map_err(|e| {
        CliError::new(format!(
            "{}: malformed envelope ({}): {e}",
            path.display(),
            e.code()
        ))
    })
}

/// Writes a file, naming it in the error.
pub(crate) fn write_file(path: &PathBuf, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes).map_err(|e| CliError::new(format!("{}: {e}", path.display())))
}

pub(crate) fn out_err(e: std::io::Error) -> CliError {
    CliError::new(format!("writing output: {e}"))
}
