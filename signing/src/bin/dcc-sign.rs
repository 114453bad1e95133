//! `dcc-sign`: see `dcc_signing::cli`.

fn main() {
    let code = dcc_signing::cli::main_with_args(
        std::env::args_os(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::exit(code);
}
