//! `dcc-sign duis sign` / `dcc-sign duis verify`: DUIS XML signed and verified as DCC Boxed
//! does (XML-DSig enveloped signature, ECDSA P-256/SHA-256, signer by `X509IssuerSerial`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::{out_err, read_bounded, write_file, CliError};
use crate::duis::{DuisError, Limits, XmlKeyring, XmlSigner};
use crate::pki::{now_unix, rfc3339, OrgCertificate, MAX_PEM_LEN};
use crate::verify::P256Verifier;
use crate::Signer;

/// `dcc-sign duis`
#[derive(Debug, Args)]
pub struct DuisArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DuisCommand,
}

/// The `duis` subcommands.
#[derive(Debug, Subcommand)]
pub enum DuisCommand {
    /// Sign a DUIS document (insert or replace its ds:Signature).
    Sign(DuisSignArgs),
    /// Verify a DUIS document's XML-DSig signature against a folder of certificates.
    Verify(DuisVerifyArgs),
}

/// `dcc-sign duis sign`
#[derive(Debug, Args)]
#[command(
    after_help = "Signs as DCC Boxed does: an enveloped ds:Signature, last child of the \
root (an existing one, such as a reference template's placeholder, is replaced where it \
stands), exclusive C14N of SignedInfo, one Reference URI=\"\" with the enveloped-signature \
transform and SHA-256 over the inclusive C14N of the document, ECDSA P-256/SHA-256 as raw r||s, \
and the signer named by X509IssuerSerial (the certificate's issuer and decimal serial). The \
rest of the document is kept byte for byte. The key must be the certificate's.\n\n\
Examples:\n  \
dcc-sign duis sign --key certs/xml-sign-90B3D51F30010000-ds.key \\\n      \
--cert certs/xml-sign-90B3D51F30010000-ds.pem templates/11.2_READ_FIRMWARE_VERSION_REQUEST_DUIS.XML -o req.xml\n  \
dcc-sign duis sign --key k.pem --cert c.pem request.xml > signed.xml"
)]
pub struct DuisSignArgs {
    /// The signer's PKCS#8 private key (PEM or DER).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The signer's certificate (PEM or DER).
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// The DUIS document to sign.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Where to write the signed document (default: standard output).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `dcc-sign duis verify`
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status 0 only when the document is well-formed DUIS (no DOCTYPE, \
within the size and depth limits, a valid Request or Response header), carries a ds:Signature \
of the DUIS form, names by X509IssuerSerial a certificate found in DIR, its Reference digest \
matches the document and its ECDSA signature verifies. Otherwise one line names the failure \
(no signature, unknown signer, digest mismatch, bad signature, DOCTYPE refused, invalid \
field...) with its code, and the exit status is 1.\n\n\
DIR holds PEM certificates (*.pem, bundles allowed; *.key.pem skipped). They are pinned: \
trusted as they are, without a chain, as DCC Boxed's xml-sign-* certificates must be. A \
certificate outside its validity period is reported on stderr as a warning: XML-DSig says the \
signature is valid; whether the certificate still counts is the caller's policy.\n\n\
Examples:\n  \
dcc-sign duis verify --certs shared/vectors/dccboxed/certs samples/readfw-response.xml\n  \
dcc-sign duis verify --certs my-certs signed.xml && echo valid"
)]
pub struct DuisVerifyArgs {
    /// A folder of PEM certificates to find the signer among.
    #[arg(long, value_name = "DIR")]
    pub certs: PathBuf,
    /// The DUIS document.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

pub(super) fn run(a: DuisArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    match a.command {
        DuisCommand::Sign(a) => sign(a, out),
        DuisCommand::Verify(a) => verify(a, out, err),
    }
}

fn named(path: &Path, e: DuisError) -> CliError {
    CliError::new(format!("{}: {e} ({})", path.display(), e.code()))
}

fn sign(a: DuisSignArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let cert = OrgCertificate::parse(&read_bounded(&a.cert, MAX_PEM_LEN)?)
        .map_err(|e| CliError::new(format!("{}: {e}", a.cert.display())))?;
    let key = Signer::from_pkcs8(&read_bounded(&a.key, MAX_PEM_LEN)?)
        .map_err(|e| CliError::new(format!("{}: {e}", a.key.display())))?;
    let signer = XmlSigner::new(key, &cert).map_err(|e| named(&a.key, e))?;
    let doc = read_bounded(&a.file, Limits::default().max_len)?;
    let signed = signer.sign_document(&doc).map_err(|e| named(&a.file, e))?;
    match &a.out {
        Some(p) => write_file(p, &signed),
        None => out.write_all(&signed).map_err(out_err),
    }
}

/// Every certificate in `dir` (`*.pem`, bundles allowed; `*.key.pem` skipped), sorted by file
/// name; a `.pem` that holds no certificate is a warning.
fn load_certs(dir: &Path, err: &mut dyn Write) -> Result<Vec<OrgCertificate>, CliError> {
    let rd =
        std::fs::read_dir(dir).map_err(|e| CliError::new(format!("{}: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            n.ends_with(".pem") && !n.ends_with(".key.pem")
        })
        .collect();
    paths.sort();
    let mut certs = Vec::new();
    for p in paths {
        let bytes = read_bounded(&p, MAX_PEM_LEN)?;
        // A key file beside its certificate (`key.pem`, as `dcc-sign pki init` and the
        // router's dcc-xml-sign folder write them) is not a certificate to warn about.
        if bytes.windows(11).any(|w| w == b"PRIVATE KEY")
            && !bytes.windows(11).any(|w| w == b"CERTIFICATE")
        {
            continue;
        }
        match OrgCertificate::parse_all(&bytes) {
            Ok(c) => certs.extend(c),
            Err(e) => {
                let _ = writeln!(err, "dcc-sign: warning: {}: skipped: {e}", p.display());
            }
        }
    }
    if certs.is_empty() {
        return Err(CliError::new(format!("{}: no certificates", dir.display())));
    }
    Ok(certs)
}

fn verify(a: DuisVerifyArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let mut ring = XmlKeyring::new();
    for c in load_certs(&a.certs, err)? {
        ring.insert(c, &P256Verifier);
    }
    let limits = Limits::default();
    let doc = read_bounded(&a.file, limits.max_len)?;
    let v = ring.verify(&doc, &limits).map_err(|e| named(&a.file, e))?;
    let d = &v.signed.document;
    let id = d.header_field("RequestID").unwrap_or("-").trim();
    writeln!(
        out,
        "{}: valid: {} {} signed by {} role {:02X} (subject {}; issuer {}, serial {})",
        a.file.display(),
        d.root(),
        id,
        v.cert.subject_eui64,
        v.cert.role.code(),
        v.cert.subject,
        v.cert.issuer,
        v.signed.signature.signer.serial_decimal()
    )
    .map_err(out_err)?;
    let now = now_unix();
    if !v.cert.is_valid_at(now) {
        let _ = writeln!(
            err,
            "dcc-sign: warning: the signer's certificate is not valid now (valid {} to {})",
            rfc3339(v.cert.not_before),
            rfc3339(v.cert.not_after)
        );
    }
    Ok(())
}
