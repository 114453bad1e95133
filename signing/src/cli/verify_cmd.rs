//! `dcc-sign verify`: chain, validity and signature of one envelope.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{decode_envelope, out_err, read_bounded, CliError};
use crate::envelope::MAX_ENVELOPE_LEN;
use crate::pki::crl::MAX_CRL_LEN;
use crate::pki::{
    now_unix, CaCertificate, ChainValidator, Crl, OrgCertificate, TrustAnchors, MAX_PEM_LEN,
};
use crate::verify::{P256Verifier, Verifier};

/// `dcc-sign verify`
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status 0 only when the certificate chains to the root, every \
certificate is valid at --at (default: now), the certificate is a signing certificate, the \
envelope names it as signer (issuer + serial) and its originator is the certificate's EUI-64, \
and the signature verifies. Otherwise one line says what failed, with exit status 1.\n\n\
Intermediates: every --chain file; when none is given, issuing.pem beside the --ca file is \
used if present (the demo PKI layout). --ca may also be a PEM bundle: its self-issued \
certificates are the roots, the others intermediates.\n\n\
Examples:\n  \
dcc-sign verify --ca demo-pki/ca/root.pem --cert demo-pki/users/supplier-a/cert.pem req.dcsr\n  \
dcc-sign verify --ca root.pem --chain issuing.pem --cert c.pem --crl crl.pem --at 1780000000 req.dcsr"
)]
pub struct VerifyArgs {
    /// The trusted root CA certificate (PEM, may be a bundle).
    #[arg(long, value_name = "FILE")]
    pub ca: PathBuf,
    /// Intermediate (issuing) CA certificates (PEM, bundles allowed); repeatable.
    #[arg(long, value_name = "FILE")]
    pub chain: Vec<PathBuf>,
    /// The signer's Organisation Certificate.
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// CRLs to check the certificate against (each must verify against a known CA); repeatable.
    #[arg(long, value_name = "FILE")]
    pub crl: Vec<PathBuf>,
    /// Validate at this time, Unix seconds (default: now).
    #[arg(long, value_name = "UNIX")]
    pub at: Option<u64>,
    /// The envelope file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

fn cas(path: &Path) -> Result<Vec<CaCertificate>, CliError> {
    CaCertificate::parse_all(&read_bounded(path, MAX_PEM_LEN)?)
        .map_err(|e| CliError::new(format!("{}: {e}", path.display())))
}

pub(super) fn run(a: VerifyArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let at = a.at.unwrap_or_else(now_unix);
    let given = cas(&a.ca)?;
    let (mut roots, mut intermediates): (Vec<_>, Vec<_>) =
        given.into_iter().partition(CaCertificate::is_self_issued);
    if roots.is_empty() {
        // Only non-root CAs given as trust anchors: trust them directly.
        roots = std::mem::take(&mut intermediates);
    }
    let mut chain_files = a.chain.clone();
    if chain_files.is_empty() {
        let beside = a.ca.with_file_name("issuing.pem");
        if beside.is_file() && a.ca.file_name() != beside.file_name() {
            chain_files.push(beside);
        }
    }
    for f in &chain_files {
        intermediates.extend(cas(f)?);
    }
    let root_name = roots.first().map(|r| r.subject.clone()).unwrap_or_default();
    let mut validator = ChainValidator::new(TrustAnchors::new(roots.clone()));
    for i in &intermediates {
        validator.add_intermediate(i.clone());
    }
    for f in &a.crl {
        let bytes = read_bounded(f, 2 * MAX_CRL_LEN)?;
        let crl = roots
            .iter()
            .chain(&intermediates)
            .find_map(|ca| {
                let crl = Crl::parse_verified(&bytes, ca).ok()?;
                validator.validate_ca(ca, at).ok()?;
                Some(crl)
            })
            .ok_or_else(|| {
                CliError::new(format!(
                    "{}: CRL is not signed by a trusted CA",
                    f.display()
                ))
            })?;
        validator.add_revoked(crl.revoked);
    }

    let bytes = read_bounded(&a.file, MAX_ENVELOPE_LEN)?;
    let env = decode_envelope(&a.file, &bytes)?;
    let cert = OrgCertificate::parse(&read_bounded(&a.cert, MAX_PEM_LEN)?)
        .map_err(|e| CliError::new(format!("{}: {e}", a.cert.display())))?;
    if env.header.signer != cert.id {
        return Err(CliError::new(format!(
            "refused: the envelope's signer {} is not the certificate {}",
            env.header.signer, cert.id
        )));
    }
    validator
        .validate(&cert, at)
        .map_err(|e| CliError::new(format!("refused: certificate: {e}")))?;
    if env.header.request_id.originator != cert.subject_eui64 {
        return Err(CliError::new(format!(
            "refused: originator {} is not the certificate's EUI-64 {}",
            env.header.request_id.originator, cert.subject_eui64
        )));
    }
    P256Verifier
        .prepare(&cert.public_key)
        .verify_prehash(&env.digest(), env.signature)
        .map_err(|_| CliError::new("refused: signature does not verify"))?;
    writeln!(
        out,
        "OK: {} signed by {} ({}), chain to {} valid at {}",
        env.header.request_id, cert.subject, cert.id, root_name, at
    )
    .map_err(out_err)
}
