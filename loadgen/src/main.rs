//! `loadgen`: see `loadgen --help` and the library docs.
#![forbid(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    loadgen::cli::main(loadgen::cli::Args::parse())
}
