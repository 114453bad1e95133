//! `dcc-sign pki init`: write a demo PKI to a directory.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{out_err, CliError};
use crate::pki::demo::Population;
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
        srp (Shared Resource Provider, supplier role), admin (other, 7F).\n\
        A national population adds supplier-0001… (IS/ES/GS) and netop-0001… (ED), each with\n\
        --certs-per-user Organisation Certificates (users/<name>/cert.pem, cert-2.pem…).\n\n\
        Examples:\n  \
        dcc-sign pki init --dir demo-pki\n  \
        dcc-sign pki init --dir demo-pki --force --users 100\n  \
        dcc-sign pki init --dir national-pki --suppliers 200 --network-operators 20 --certs-per-user 3\n  \
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
    /// Also issue this many national-population Suppliers (supplier-0001…: IS, ES, GS).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub suppliers: usize,
    /// Also issue this many national-population network operators (netop-0001…: ED).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub network_operators: usize,
    /// Organisation Certificates (signing keys) per national-population User.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub certs_per_user: usize,
    /// Issue as if the time were this (Unix seconds); default: now.
    #[arg(long, value_name = "UNIX")]
    pub now: Option<u64>,
    /// Derive every key and serial from this seed (reproducible; test use only: the seed
    /// gives away every private key). Use with --now for byte-identical output.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

pub(super) fn run(args: PkiArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let PkiCommand::Init(a) = args.command;
    let population = Population {
        bulk_users: a.users,
        suppliers: a.suppliers,
        network_operators: a.network_operators,
        certs_per_user: a.certs_per_user,
    };
    if a.certs_per_user == 0 {
        return Err(CliError::new(
            "--certs-per-user must be at least 1".to_owned(),
        ));
    }
    let now = a.now.unwrap_or_else(now_unix);
    let pki = DemoPki::generate_population(now, &population, a.seed)?;
    let written = pki.write_to_dir(&a.dir, a.force)?;
    for p in &written {
        writeln!(out, "wrote {}", p.display()).map_err(out_err)?;
    }
    for u in pki.users.iter().take(16) {
        let roles: Vec<_> = u.user_roles.iter().map(|r| r.abbrev()).collect();
        writeln!(
            out,
            "user {:<13} EUI-64 {}  role {}  User Roles {}  cert {}{}",
            u.name,
            u.eui64,
            u.role,
            roles.join(","),
            u.cert.id,
            match u.more_certs.len() {
                0 => String::new(),
                n => format!(" (+{n} more)"),
            }
        )
        .map_err(out_err)?;
    }
    if pki.users.len() > 16 {
        writeln!(out, "… and {} more users", pki.users.len() - 16).map_err(out_err)?;
    }
    let certs: usize = pki.users.iter().map(|u| 1 + u.more_certs.len()).sum();
    writeln!(
        out,
        "{} users, {certs} signing certificates",
        pki.users.len()
    )
    .map_err(out_err)?;
    Ok(())
}
