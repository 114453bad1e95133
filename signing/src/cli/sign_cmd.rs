//! `dcc-sign sign`: sign one envelope with an Organisation Certificate's key.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{out_err, read_bounded, write_file, CliError};
use crate::envelope::{Header, MAX_BODY_LEN};
use crate::pki::{now_unix, rfc3339, OrgCertificate, PkiError, MAX_PEM_LEN};
use crate::{
    CommandVariant, Eui64, ExecutionKind, RemotePartyRole, RequestId, SignError, Signer, Srv,
    UserRole,
};

/// What `dcc-sign` says it needs, after naming the key it was given instead.
const NEEDS_P256: &str = "dcc-sign needs an ECDSA P-256 key (prime256v1)";

/// `dcc-sign sign`
#[derive(Debug, Args)]
#[command(
    after_help = "The originator (the certificate's EUI-64) and the signer id (issuer + \
serial) come from the certificate. The User Role defaults from the certificate's remote-party \
role: supplier -> IS, network operator -> ED; otherwise pass --role.\n\n\
Refused unless --force: a certificate that is expired or not yet valid at the signing time \
(--now, default: the clock), and an SRV that is not in the DUIS catalogue (the 129 SRVs of \
the router's default policy). --force signs anyway and prints one warning line per overridden \
check on stderr: for building requests the router must refuse. A key that is not ECDSA P-256, \
or that does not match the certificate, is refused even with --force.\n\n\
Examples:\n  \
dcc-sign sign --key demo-pki/users/supplier-a/key.pem --cert demo-pki/users/supplier-a/cert.pem \\\n      \
--srv 2.2 --target 00-DB-12-34-56-78-00-04 --counter 1 --body-hex 0102 --out req.dcsr\n  \
dcc-sign sign --key k.pem --cert c.pem --srv 1.1.1 --target 00DB123456780004 --counter 7 \\\n      \
--role GS --cv 4 --execution future-dated --at 1893456000 --out req.dcsr\n  \
dcc-sign sign --key k.pem --cert expired.pem --srv 99.99 --target 00DB123456780004 --counter 8 \\\n      \
--force --out bad.dcsr   (warns twice, signs)"
)]
pub struct SignArgs {
    /// The signer's PKCS#8 private key (PEM or DER).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The signer's Organisation Certificate (PEM or DER).
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// Service Reference Variant, e.g. 2.2 or 1.1.1.
    #[arg(long)]
    pub srv: Srv,
    /// Target EUI-64 (device or DCC), e.g. 00-DB-12-34-56-78-00-04.
    #[arg(long, value_name = "EUI64")]
    pub target: Eui64,
    /// Originator counter (anti-replay).
    #[arg(long, value_name = "N")]
    pub counter: u64,
    /// User Role: IS, ES, GS, ED, GT, OU or RSA (default from the certificate).
    #[arg(long, value_name = "ROLE")]
    pub role: Option<UserRole>,
    /// Command variant 1..=8.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub cv: u8,
    /// Execution: on-demand, future-dated or dcc-scheduled.
    #[arg(long, value_name = "KIND", default_value = "on-demand")]
    pub execution: ExecutionKind,
    /// Execution time, Unix seconds (required for future-dated and dcc-scheduled).
    #[arg(long, value_name = "UNIX")]
    pub at: Option<u64>,
    /// Body bytes in hex.
    #[arg(long, value_name = "HEX", conflicts_with = "body_file")]
    pub body_hex: Option<String>,
    /// Body bytes from a file.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Where to write the signed envelope.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The signing time the certificate's validity is checked at, Unix seconds (default: now).
    #[arg(long, value_name = "UNIX")]
    pub now: Option<u64>,
    /// Sign even if the certificate is expired or not yet valid at the signing time, or the SRV
    /// is not in the DUIS catalogue; each such check becomes a warning on stderr.
    #[arg(long)]
    pub force: bool,
}

/// The User Role a certificate's holder sends in when none is given.
pub(crate) fn default_role(role: RemotePartyRole) -> Option<UserRole> {
    match role {
        RemotePartyRole::Supplier => Some(UserRole::ImportSupplier),
        RemotePartyRole::NetworkOperator => Some(UserRole::ElectricityDistributor),
        _ => None,
    }
}

/// A key refused by the library, said from the command's point of view: what the file holds,
/// then what `dcc-sign` needs.
fn key_error(path: &Path, e: SignError) -> CliError {
    match e {
        SignError::WrongKey(kind) => {
            CliError::new(format!("{}: {kind}; {NEEDS_P256}", path.display()))
        }
        other => CliError::new(format!("{}: {other}", path.display())),
    }
}

/// A certificate refused by the parser; a subject key of another kind is named as a key is.
fn cert_error(path: &Path, e: PkiError) -> CliError {
    match e {
        PkiError::PublicKeyKind(kind) => CliError::new(format!(
            "{}: the certificate's public key is {kind}; {NEEDS_P256}",
            path.display()
        )),
        other => CliError::new(format!("{}: {other}", path.display())),
    }
}

/// What would make the request one the DCC (or the router) refuses: the certificate outside
/// its validity at `at`, an SRV outside the catalogue. Refusals without `--force`, warnings
/// with it.
fn objections(a: &SignArgs, cert: &OrgCertificate, at: u64) -> Vec<String> {
    let mut v = Vec::new();
    if at < cert.not_before {
        v.push(format!(
            "{}: certificate not yet valid (not before {}; signing time {})",
            a.cert.display(),
            rfc3339(cert.not_before),
            rfc3339(at)
        ));
    } else if at > cert.not_after {
        v.push(format!(
            "{}: certificate expired (not after {}; signing time {})",
            a.cert.display(),
            rfc3339(cert.not_after),
            rfc3339(at)
        ));
    }
    if a.srv.duis_name().is_none() {
        v.push(format!("SRV {} is not in the DUIS catalogue", a.srv));
    }
    v
}

pub(super) fn run(a: SignArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let cert = OrgCertificate::parse(&read_bounded(&a.cert, MAX_PEM_LEN)?)
        .map_err(|e| cert_error(&a.cert, e))?;
    let signer = Signer::from_pkcs8(&read_bounded(&a.key, MAX_PEM_LEN)?)
        .map_err(|e| key_error(&a.key, e))?;
    if signer.public_key() != cert.public_key {
        return Err(CliError::new(format!(
            "the key {} does not match the certificate {}",
            a.key.display(),
            a.cert.display()
        )));
    }
    let role = match a.role.or_else(|| default_role(cert.role)) {
        Some(r) => r,
        None => {
            return Err(CliError::new(format!(
                "certificate role {} has no default User Role: pass --role",
                cert.role
            )))
        }
    };
    let command_variant = CommandVariant::new(a.cv)
        .ok_or_else(|| CliError::new(format!("--cv {} is not 1..=8", a.cv)))?;
    let execute_at = match (a.execution, a.at) {
        (ExecutionKind::OnDemand, None) => 0,
        (ExecutionKind::OnDemand, Some(_)) => {
            return Err(CliError::new(
                "--at is only for future-dated or dcc-scheduled",
            ))
        }
        (_, None) => {
            return Err(CliError::new(format!(
                "--execution {} needs --at",
                a.execution
            )))
        }
        (_, Some(0)) => return Err(CliError::new("--at must be after 1970-01-01T00:00:00Z")),
        (_, Some(t)) => t,
    };
    let body = match (&a.body_hex, &a.body_file) {
        (Some(h), _) => {
            let h: String = h.chars().filter(|c| !c.is_whitespace()).collect();
            if h.len() > 2 * MAX_BODY_LEN {
                return Err(CliError::new(format!("body over {MAX_BODY_LEN} bytes")));
            }
            hex::decode(h).map_err(|e| CliError::new(format!("--body-hex: {e}")))?
        }
        (None, Some(p)) => read_bounded(p, MAX_BODY_LEN)?,
        (None, None) => Vec::new(),
    };
    let header = Header {
        role,
        command_variant,
        execution: a.execution,
        srv: a.srv,
        request_id: RequestId {
            originator: cert.subject_eui64,
            target: a.target,
            counter: a.counter,
        },
        execute_at,
        signer: cert.id,
    };
    // Last, so that warnings are printed only for a request that is then signed.
    let at = a.now.unwrap_or_else(now_unix);
    let objections = objections(&a, &cert, at);
    if !objections.is_empty() {
        if !a.force {
            return Err(CliError::new(format!(
                "{}; use --force to sign anyway",
                objections.join("; ")
            )));
        }
        for o in &objections {
            writeln!(err, "dcc-sign: warning: {o}; signing anyway (--force)").map_err(out_err)?;
        }
    }
    let bytes = signer
        .sign_envelope(&header, &body)
        .map_err(|e| CliError::new(e.to_string()))?;
    write_file(&a.out, &bytes)?;
    writeln!(
        out,
        "signed SRV {} request {} as {} (CV {}, {}), signer {}, {} bytes -> {}",
        header.srv,
        header.request_id,
        header.role,
        header.command_variant,
        header.execution,
        header.signer,
        bytes.len(),
        a.out.display()
    )
    .map_err(out_err)
}
