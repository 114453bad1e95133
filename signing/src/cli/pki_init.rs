//! `dcc-sign pki init`: write a demo PKI to a directory.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{out_err, CliError};
use crate::pki::{now_unix, DemoPki};

/// `dcc-sign pki …`
#[derive(Debug, Args)]
pub struct PkiArgs {
    /// What to do with the PKI.
    #[command(subcommand)]
    pub command: PkiCommand,
}

/// The `pki` subcommands.
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Generate a demo PKI (root CA, issuing CA, demo Users) and write it to a directory.
    #[command(after_help = "Writes:\n  \
        D/ca/root.pem, root-key.pem, issuing.pem, issuing-key.pem, chain.pem,\n  \
        D/ca/server-cert.pem, server-key.pem   (TLS server: localhost, 127.0.0.1, ::1)\n  \
        D/users/<name>/cert.pem, key.pem       (Organisation Certificate, PKCS#8 key)\n  \
        D/users/<name>/tls-cert.pem, tls-key.pem, user.json\n\
        Users: supplier-a, supplier-b (supplier, IS/GS), netop (network operator, ED),\n  \
        srp (Shared Resource Provider, supplier role), admin (other, 7F).\n\n\
        Examples:\n  \
        dcc-sign pki init --dir demo-pki\n  \
        dcc-sign pki init --dir demo-pki --force --users 100\n  \
        dcc-sign pki init --dir demo-pki --seed 7 --now 1780000000   (reproducible)")]
    Init(PkiInitArgs),
}

/// `dcc-sign pki init`
#[derive(Debug, Args)]
pub struct PkiInitArgs {
    /// Directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
    /// Also issue this many numbered supplier Users (user-00001…) for load generation.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub users: usize,
    /// Issue as if the time were this (Unix seconds); default: now.
    #[arg(long, value_name = "UNIX")]
    pub now: Option<u64>,
    /// Derive every key and serial from this seed (reproducible; test use only: the seed
    /// gives away every private key). Use with --now for byte-identical output.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

/// The most bulk Users `pki init` writes.
const MAX_BULK_USERS: usize = 100_000;

pub(super) fn run(args: PkiArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let PkiCommand::Init(a) = args.command;
    if a.users > MAX_BULK_USERS {
        return Err(CliError::new(format!(
            "--users {} is over the maximum {MAX_BULK_USERS}",
            a.users
        )));
    }
    let now = a.now.unwrap_or_else(now_unix);
    let pki = match a.seed {
        Some(seed) => DemoPki::generate_seeded(now, a.users, seed)?,
        None => DemoPki::generate_with_users(now, a.users)?,
    };
    let written = pki.write_to_dir(&a.dir, a.force)?;
    for p in &written {
        writeln!(out, "wrote {}", p.display()).map_err(out_err)?;
    }
    for u in pki.users.iter().take(16) {
        let roles: Vec<_> = u.user_roles.iter().map(|r| r.abbrev()).collect();
        writeln!(
            out,
            "user {:<12} EUI-64 {}  role {}  User Roles {}  cert {}",
            u.name,
            u.eui64,
            u.role,
            roles.join(","),
            u.cert.id
        )
        .map_err(out_err)?;
    }
    if pki.users.len() > 16 {
        writeln!(out, "… and {} more users", pki.users.len() - 16).map_err(out_err)?;
    }
    Ok(())
}
