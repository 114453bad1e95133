//! `dcc-sign inspect`: print every field of an envelope.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::{decode_envelope, out_err, read_bounded, CliError};
use crate::envelope::{MAX_ENVELOPE_LEN, VERSION};

/// `dcc-sign inspect`
#[derive(Debug, Args)]
#[command(
    after_help = "Decodes without verifying (use `dcc-sign verify` for that).\n\n\
Examples:\n  \
dcc-sign inspect req.dcsr\n  \
dcc-sign inspect --json req.dcsr | jq .request_id"
)]
pub struct InspectArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// The envelope file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// How many body bytes the preview shows.
const PREVIEW: usize = 32;

#[derive(serde::Serialize)]
struct View {
    version: u8,
    length: usize,
    user_role: String,
    user_role_code: u8,
    command_variant: u8,
    execution: String,
    execute_at: u64,
    srv: String,
    request_id: String,
    originator: String,
    target: String,
    counter: u64,
    signer: String,
    signer_issuer_hash: String,
    signer_serial: String,
    body_length: usize,
    body_hex_preview: String,
    signature: String,
    digest: String,
}

pub(super) fn run(a: InspectArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let bytes = read_bounded(&a.file, MAX_ENVELOPE_LEN)?;
    let env = decode_envelope(&a.file, &bytes)?;
    let h = &env.header;
    let preview = &env.body[..env.body.len().min(PREVIEW)];
    let v = View {
        version: VERSION,
        length: bytes.len(),
        user_role: h.role.abbrev().to_owned(),
        user_role_code: h.role.code(),
        command_variant: h.command_variant.get(),
        execution: h.execution.to_string(),
        execute_at: h.execute_at,
        srv: h.srv.to_string(),
        request_id: h.request_id.to_string(),
        originator: h.request_id.originator.to_string(),
        target: h.request_id.target.to_string(),
        counter: h.request_id.counter,
        signer: h.signer.to_string(),
        signer_issuer_hash: hex::encode_upper(h.signer.issuer_hash()),
        signer_serial: hex::encode_upper(h.signer.serial()),
        body_length: env.body.len(),
        body_hex_preview: format!(
            "{}{}",
            hex::encode(preview),
            if env.body.len() > PREVIEW { "…" } else { "" }
        ),
        signature: hex::encode(env.signature),
        digest: hex::encode(env.digest()),
    };
    if a.json {
        let s = serde_json::to_string_pretty(&v).map_err(|e| CliError::new(e.to_string()))?;
        return writeln!(out, "{s}").map_err(out_err);
    }
    let rows: [(&str, String); 17] = [
        ("version", v.version.to_string()),
        ("length", format!("{} bytes", v.length)),
        (
            "user role",
            format!("{} ({})", v.user_role, v.user_role_code),
        ),
        ("command variant", v.command_variant.to_string()),
        ("execution", v.execution),
        ("execute at", v.execute_at.to_string()),
        ("SRV", v.srv),
        ("request id", v.request_id),
        ("originator", v.originator),
        ("target", v.target),
        ("counter", v.counter.to_string()),
        ("signer", v.signer),
        ("signer serial", v.signer_serial),
        ("body length", v.body_length.to_string()),
        ("body (hex)", v.body_hex_preview),
        ("signature r||s", v.signature),
        ("digest (SHA-256)", v.digest),
    ];
    for (k, val) in rows {
        writeln!(out, "{k:<17} {val}").map_err(out_err)?;
    }
    Ok(())
}
