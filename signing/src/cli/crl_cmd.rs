//! `dcc-sign crl`: issue a CRL from a demo PKI's issuing CA.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::{out_err, read_bounded, write_file, CliError};
use crate::pki::{now_unix, CertificateAuthority, OrgCertificate, MAX_PEM_LEN};

/// `dcc-sign crl`
#[derive(Debug, Args)]
#[command(
    after_help = "Signs with D/ca/issuing.pem and D/ca/issuing-key.pem. Serials are hex \
(colons and a 0x prefix allowed), as `openssl x509 -serial` prints them.\n\n\
Examples:\n  \
dcc-sign crl --ca-dir demo-pki/ca --revoke 4F3A5C... --out crl.pem\n  \
dcc-sign crl --ca-dir demo-pki/ca --revoke-cert demo-pki/users/supplier-b/cert.pem --out crl.pem\n  \
openssl crl -in crl.pem -CAfile demo-pki/ca/issuing.pem -noout -verify"
)]
pub struct CrlArgs {
    /// The CA directory (holding issuing.pem and issuing-key.pem).
    #[arg(long, value_name = "DIR")]
    pub ca_dir: PathBuf,
    /// Serial numbers to revoke, in hex.
    #[arg(long, value_name = "SERIAL", num_args = 1..)]
    pub revoke: Vec<String>,
    /// Certificates to revoke (must be issued by this CA).
    #[arg(long, value_name = "FILE")]
    pub revoke_cert: Vec<PathBuf>,
    /// Days until the next CRL is due.
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    pub next_update_days: u64,
    /// CRL number (default: the issue time in Unix seconds, so it increases).
    #[arg(long, value_name = "N")]
    pub number: Option<u64>,
    /// Issue as if the time were this (Unix seconds); default: now.
    #[arg(long, value_name = "UNIX")]
    pub now: Option<u64>,
    /// Where to write the CRL (PEM).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

fn parse_serial(s: &str) -> Result<Vec<u8>, CliError> {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let mut h: String = t.chars().filter(|c| *c != ':').collect();
    if h.len() % 2 == 1 {
        h.insert(0, '0');
    }
    let b = hex::decode(&h).map_err(|_| CliError::new(format!("{s:?} is not a hex serial")))?;
    let first = b.iter().position(|&x| x != 0);
    match first {
        Some(i) if b.len() - i <= crate::MAX_SERIAL_LEN => Ok(b[i..].to_vec()),
        _ => Err(CliError::new(format!(
            "{s:?} is not a serial (non-zero, at most 20 octets)"
        ))),
    }
}

pub(super) fn run(a: CrlArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let ca = CertificateAuthority::load(
        &read_bounded(&a.ca_dir.join("issuing.pem"), MAX_PEM_LEN)?,
        &read_bounded(&a.ca_dir.join("issuing-key.pem"), MAX_PEM_LEN)?,
    )
    .map_err(|e| CliError::new(format!("{}: {e}", a.ca_dir.display())))?;
    let mut serials = Vec::new();
    for s in &a.revoke {
        serials.push(parse_serial(s)?);
    }
    for p in &a.revoke_cert {
        let c = OrgCertificate::parse(&read_bounded(p, MAX_PEM_LEN)?)
            .map_err(|e| CliError::new(format!("{}: {e}", p.display())))?;
        if !c.is_issued_by(&ca.cert) {
            return Err(CliError::new(format!(
                "{}: issued by {}, not by {}",
                p.display(),
                c.issuer,
                ca.cert.subject
            )));
        }
        serials.push(c.serial);
    }
    let now = a.now.unwrap_or_else(now_unix);
    let next = now.saturating_add(a.next_update_days.saturating_mul(86_400));
    let crl = ca.issue_crl(&serials, now, next, a.number.unwrap_or(now))?;
    write_file(&a.out, crl.to_pem().as_bytes())?;
    writeln!(
        out,
        "wrote {}: {} revoked, issuer {}, number {}",
        a.out.display(),
        crl.revoked.len(),
        crl.issuer,
        crl.crl_number.unwrap_or_default()
    )
    .map_err(out_err)?;
    for id in &crl.revoked {
        writeln!(out, "revoked {id}").map_err(out_err)?;
    }
    Ok(())
}
