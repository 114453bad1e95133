//! `loadgen`: see `loadgen --help` and the library docs.
#![forbid(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    // `loadgen merge FILES…` is the one subcommand; everything else is a run, whose flags stay
    // top-level (`loadgen -s overload …`) as they always were.
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "merge") {
        let rest = std::iter::once("loadgen merge".into()).chain(std::env::args_os().skip(2));
        return loadgen::cli::merge_main(loadgen::cli::MergeArgs::parse_from(rest));
    }
    loadgen::cli::main(loadgen::cli::Args::parse())
}
