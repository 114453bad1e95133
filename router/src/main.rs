//! `dcc-router`: see `dcc-router --help`.
fn main() -> std::process::ExitCode {
    dcc_router::cli::run()
}
