//! `dcc-router`: a thin stub until the server issue lands; the pipeline is the library.

fn main() {
    let policy = dcc_router::Policy::default();
    println!(
        "dcc-router {}: library ready ({} SRVs in the default policy); the server is not built yet",
        env!("CARGO_PKG_VERSION"),
        policy.catalogue.len()
    );
}
