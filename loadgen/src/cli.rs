//! The command line: parse, resolve the scenario and target, run, report, exit code.
//!
//! Exit codes: 0 all expectations held; 1 an expectation failed; 2 bad parameters or setup.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::calibrate;
use crate::clock::TokioClock;
use crate::population::World;
use crate::progress::ProgressDisplay;
use crate::report::{self, Report};
use crate::run::{run, RunOptions};
use crate::scenario::{Overrides, Plan, RateSpec, Scenario, BUILTIN};
use crate::target::{self, mock, Target, TargetKind};

/// Open-loop load generator for dcc-router.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    long_about = None,
    after_help = "Several generator processes against one server: run each with --instance K/N\n(K of N: disjoint anti-replay counters; the same --rate each) and --out DIR, then\n`loadgen merge DIR1/latency.hlog DIR2/latency.hlog …` prints one per-lane report.\nA scenario rate of \"capacity\" uses the target's published estimate, else a calibration\nramp (printed step by step); --rate skips both."
)]
pub struct Args {
    /// Built-in scenario name (steady, overload, solr, maintenance, attack) or a scenario TOML file.
    #[arg(long, short, default_value = "steady")]
    pub scenario: String,
    /// Base rate in requests per second (overrides the scenario's).
    #[arg(long, short)]
    pub rate: Option<f64>,
    /// Total duration of the scenario's phases, e.g. `10s`, `500ms`, `2m` (phases scale).
    #[arg(long, short, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Ramp-up from zero to the first phase's rate, e.g. `2s`.
    #[arg(long, value_parser = parse_duration)]
    pub ramp: Option<Duration>,
    /// `inproc` (embedded router), `mock` (scripted stand-in), `quic://HOST:PORT` (binary
    /// envelopes over QUIC), `https://HOST:PORT` (DUIS XML over HTTPS with client certificates)
    /// or `http://HOST:PORT` (DUIS XML over plain HTTP: `serve --duis-plain`).
    #[arg(long, short, default_value = "inproc")]
    pub target: String,
    /// DUIS request templates (https/http only): a directory of DUIS XML templates (the DCC
    /// Reference Test Data Set's, in this project's layout), or `builtin` for loadgen's minimal
    /// documents (header and an empty body element).
    #[arg(long, default_value = crate::duis::DEFAULT_TEMPLATES)]
    pub duis_templates: String,
    /// The server's QUIC address (https/http only): its admin channel carries scenario events,
    /// the device-count check and the capacity estimate (the DUIS ingress has none).
    #[arg(long)]
    pub admin: Option<String>,
    /// Print the report as JSON on stdout instead of the text summary.
    #[arg(long)]
    pub json: bool,
    /// Write report.{txt,json,html}, per-lane .hgrm files and latency.hlog into this directory.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Sender tasks.
    #[arg(long)]
    pub senders: Option<usize>,
    /// Signing threads (default: enough for the peak rate).
    #[arg(long)]
    pub signer_threads: Option<usize>,
    /// PKI directory of the server (quic, https, http): the population (Users, signing keys,
    /// certificates) and every connection's TLS client certificate come from it.
    #[arg(long, default_value = "dcc-router-data/pki")]
    pub pki: PathBuf,
    /// Demo devices the server registered (quic, https, http; `dcc-router serve --demo-devices`).
    #[arg(long, default_value_t = dcc_router::client::demo::DEFAULT_DEMO_DEVICES)]
    pub devices: u64,
    /// Percentage of the server's demo devices in prepayment mode (quic, https, http).
    #[arg(long, default_value_t = dcc_router::client::demo::DEFAULT_PREPAYMENT_PERCENT)]
    pub prepayment_percent: u8,
    /// Worker threads of the embedded router (inproc only; default: its own default).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Policy file of the embedded router (inproc only; default: the embedded policy).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Verifier of the embedded router (inproc only; default: the scenario's, else known-signer).
    #[arg(long, value_enum)]
    pub verifier: Option<crate::scenario::VerifierMode>,
    /// This process is the K-th of N loadgen processes sending as the same Users at the same
    /// time (1-based; e.g. `--instance 2/3`): each draws the Users' anti-replay counters from its
    /// own residue class mod N of a shared clock, so the processes never send the same counter
    /// and stay within the router's anti-replay window of each other. Give every instance the
    /// same --rate (its share of the total) and its own --out, then `loadgen merge`.
    #[arg(long, value_name = "K/N", default_value = "1/1")]
    pub instance: crate::instance::Instance,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
    /// List the built-in scenarios and exit.
    #[arg(long)]
    pub list_scenarios: bool,
}

/// Parses `10s`, `250ms`, `2m`, `1.5` (seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let secs = v * mult;
    if !(secs.is_finite() && (0.0..=7.0 * 86_400.0).contains(&secs)) {
        return Err(format!("{s:?}: a duration must be between 0 and 7 days"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Builds the world the scenario runs in: loadgen's own population, or for a server target
/// (QUIC, HTTPS) the server's, read from `--pki` ([`World::from_pki_dir`]).
/// Its anti-replay counters are drawn for `--instance`.
pub fn make_world(args: &Args, scenario: &Scenario) -> Result<World, String> {
    let world = if target::parse_kind(&args.target)
        .map_err(|e| e.to_string())?
        .is_server()
    {
        World::from_pki_dir(&args.pki, scenario, args.devices, args.prepayment_percent)
            .map_err(|e| e.to_string())?
    } else {
        World::new(&scenario.population)
    };
    Ok(world.with_instance(args.instance))
}

/// Builds the target named by `--target` (for QUIC: connects one client per User of `world`).
pub async fn make_target(
    args: &Args,
    scenario: &Scenario,
    world: &World,
) -> Result<Arc<dyn Target>, target::TargetError> {
    match target::parse_kind(&args.target)? {
        TargetKind::InProc => target::inproc::build(
            args.workers,
            match &args.policy {
                Some(p) => dcc_router::Policy::load(p)
                    .map_err(|e| target::TargetError::Admin(e.to_string()))?,
                None => dcc_router::Policy::default(),
            },
            args.verifier
                .or(scenario.load.verifier)
                .unwrap_or(crate::scenario::VerifierMode::KnownSigner),
            // A DP092 window may only be planned 20:00–08:00 UTC: such scenarios run the
            // embedded router on a simulated clock from the next 20:00.
            scenario.plans_maintenance(),
        ),
        TargetKind::Mock => Ok(mock::shared(
            mock::MockConfig::default(),
            TokioClock::start_now(),
        )),
        TargetKind::Quic(addr) => target::quic::build(&addr, &args.pki, world).await,
        TargetKind::Https { addr, tls } => {
            let templates = crate::duis::TemplateSet::from_arg(&args.duis_templates)?;
            let t = target::https::connect(
                &addr,
                tls,
                &args.pki,
                world,
                scenario,
                &templates,
                args.admin.as_deref(),
            )
            .await?;
            if !args.quiet {
                eprintln!(
                    "loadgen: DUIS templates from {} ({} loaded): {}",
                    templates.source(),
                    templates.len(),
                    t.templates_chosen()
                );
            }
            Ok(Arc::new(t))
        }
        #[allow(unreachable_patterns)]
        _ => Err(target::TargetError::Unknown(args.target.clone())),
    }
}

/// `loadgen merge`: one per-lane report from the `.hlog` files of several loadgen processes.
///
/// Run one loadgen per machine (or per core group) against the same server, each with
/// `--out DIR`, then merge their `DIR/latency.hlog` files: answers by class (ok, refused,
/// busy, throttled, error) and latency percentiles of successes per lane, as one process
/// sending all that traffic would have reported, plus the combined answer rate over the span
/// the runs overlapped.
#[derive(Parser, Debug)]
#[command(name = "loadgen merge", version)]
pub struct MergeArgs {
    /// The `.hlog` files to merge (`latency.hlog` from each process's `--out` directory).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Runs `loadgen merge`: prints the merged report; exit 2 when a file cannot be read.
pub fn merge_main(args: MergeArgs) -> ExitCode {
    let mut inputs = Vec::with_capacity(args.files.len());
    for f in &args.files {
        match std::fs::read(f) {
            Ok(b) => inputs.push((f.display().to_string(), b)),
            Err(e) => {
                eprintln!("loadgen merge: cannot read {}: {e}", f.display());
                return ExitCode::from(2);
            }
        }
    }
    match crate::merge::merge(&inputs) {
        Ok(m) => {
            print!("{}", crate::merge::render(&m));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen merge: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the command line.
pub fn main(args: Args) -> ExitCode {
    match run_cli(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(msg) => {
            eprintln!("loadgen: {msg}");
            ExitCode::from(2)
        }
    }
}

/// Runs the command line: `Ok(true)` when every expectation held, `Ok(false)` when one failed,
/// `Err` for bad parameters or a failed setup.
pub fn run_cli(args: Args) -> Result<bool, String> {
    if args.list_scenarios {
        for (name, _) in BUILTIN {
            if let Ok(s) = Scenario::load(name) {
                println!("{name}\n{}\n", indent(s.description.trim()));
            }
        }
        return Ok(true);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("loadgen")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async_main(args))
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn async_main(args: Args) -> Result<bool, String> {
    let fail = |msg: String| Err(msg);
    let scenario = match Scenario::load(&args.scenario) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    if let Some(r) = args.rate {
        if !(r.is_finite() && r > 0.0) {
            return fail(format!("--rate {r}: must be a positive number"));
        }
    }
    let world = Arc::new(make_world(&args, &scenario)?);
    if !args.quiet && target::parse_kind(&args.target).is_ok_and(|k| k.is_server()) {
        eprintln!(
            "loadgen: population from {} (the scenario's [population] does not apply): {} \
             Suppliers, {} network operator(s), {} SRP(s), {} Other User(s); {} devices, {} % \
             prepayment; instance {}",
            args.pki.display(),
            world.suppliers.len(),
            world.network_operators.len(),
            world.srps.len(),
            world.other_users.len(),
            world.devices,
            args.prepayment_percent,
            args.instance
        );
    }
    let target = match make_target(&args, &scenario, &world).await {
        Ok(t) => t,
        Err(e) => return fail(e.to_string()),
    };
    let ov = Overrides {
        rate: args.rate,
        duration: args.duration,
        ramp: args.ramp,
        senders: args.senders,
    };
    // A scenario rate relative to capacity: the target's own estimate, else a calibration
    // ramp — never a fixed figure the user did not choose.
    let wants_capacity = args.rate.is_none() && matches!(scenario.load.rate, RateSpec::Named(_));
    let mut capacity = target.capacity_hint();
    let mut capacity_source = None;
    if wants_capacity {
        match capacity {
            Some(c) => {
                if !args.quiet {
                    eprintln!("loadgen: the target's capacity estimate: {c:.0}/s");
                }
            }
            None => {
                if !args.quiet {
                    eprintln!(
                        "loadgen: the target gives no capacity estimate: finding it with a \
                         calibration ramp (pass --rate to skip)…"
                    );
                }
                let quiet = args.quiet;
                let found = calibrate::discover(
                    &scenario,
                    world.clone(),
                    target.clone(),
                    &calibrate::RampConfig::default(),
                    args.signer_threads,
                    &mut |s: &calibrate::Step| {
                        if !quiet {
                            eprintln!(
                                "loadgen:   {:>8.0}/s: {} ok, {} busy, {} throttled, {} errors, p99 {}",
                                s.rate,
                                s.ok,
                                s.busy,
                                s.throttled,
                                s.errors,
                                s.p99_ms.map_or("-".to_owned(), |v| format!("{v:.2} ms"))
                            );
                        }
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
                eprintln!("loadgen: capacity {}", found.summary());
                for w in &found.warnings {
                    eprintln!("loadgen: warning (calibration): {w}");
                }
                capacity = Some(found.capacity);
                capacity_source = Some(found.summary());
            }
        }
    }
    let mut plan = match Plan::build(scenario, &ov, capacity) {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()),
    };
    if let Some(src) = capacity_source {
        plan.rate_source = src;
    }
    for w in &plan.warnings {
        eprintln!("loadgen: warning: {w}");
    }
    if let Err(e) = target.setup(&world) {
        return fail(e.to_string());
    }
    if !args.quiet {
        eprintln!(
            "loadgen: scenario {} against {}: {} requests over {:.1} s (base {:.0}/s from {}, peak {:.0}/s), {} senders",
            plan.scenario.name,
            target.describe(),
            plan.schedule.len(),
            plan.schedule.duration().as_secs_f64(),
            plan.base_rate,
            plan.rate_source,
            plan.schedule.peak_rate(),
            plan.senders
        );
    }
    if !args.quiet {
        eprintln!(
            "loadgen: signing ahead (up to {} requests before the clock starts)…",
            plan.schedule.len().min(crate::run::PRESIGN_ALL)
        );
    }
    let display = ProgressDisplay::new(args.quiet);
    let opts = RunOptions {
        signer_threads: args.signer_threads,
        ..RunOptions::default()
    };
    let result = run(plan, world, target, opts, &mut |p| display.update(p)).await;
    display.finish();
    let rep = Report::new(&result);
    if args.json {
        println!("{}", report::json::render(&rep));
    } else {
        print!("{}", report::text::render(&rep));
    }
    if let Some(dir) = &args.out {
        match report::write_files(&result, &rep, dir) {
            Ok(paths) => {
                if !args.quiet {
                    eprintln!(
                        "loadgen: wrote {} files into {}",
                        paths.len(),
                        dir.display()
                    );
                }
            }
            Err(e) => return fail(format!("cannot write reports into {}: {e}", dir.display())),
        }
    }
    Ok(rep.passed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        for bad in ["", "x", "-1s", "1e99s", "NaN"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quic_target_needs_a_pki_directory_and_known_targets_only() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none");
        let args = Args::parse_from([
            "loadgen",
            "--target",
            "quic://127.0.0.1:4433",
            "--pki",
            missing.to_str().unwrap(),
        ]);
        let sc = Scenario::load("steady").unwrap();
        let err = make_world(&args, &sc).unwrap_err();
        assert!(err.contains("PKI directory"), "{err}");
        let args = Args::parse_from(["loadgen", "--target", "ftp://x"]);
        assert!(make_world(&args, &sc).is_err());
        // https and http are server targets: their population comes from the PKI directory.
        for t in ["https://127.0.0.1:8443", "http://127.0.0.1:8080"] {
            let args =
                Args::parse_from(["loadgen", "--target", t, "--pki", missing.to_str().unwrap()]);
            let err = make_world(&args, &sc).unwrap_err();
            assert!(err.contains("PKI directory"), "{t}: {err}");
        }
    }

    #[test]
    fn instance_defaults_to_the_sole_one_and_bad_ones_are_refused() {
        use crate::instance::Instance;
        assert_eq!(Args::parse_from(["loadgen"]).instance, Instance::SOLE);
        let a = Args::parse_from(["loadgen", "--instance", "2/2"]);
        assert_eq!(a.instance, Instance::new(2, 2).unwrap());
        let sc = Scenario::load("steady").unwrap();
        assert_eq!(make_world(&a, &sc).unwrap().instance(), a.instance);
        for (bad, says) in [
            ("0/2", "K must be 1..=N"),
            ("3/2", "K must be 1..=N"),
            ("1/0", "N must be 1..="),
            ("two", "is not K/N"),
        ] {
            let e = Args::try_parse_from(["loadgen", "--instance", bad])
                .unwrap_err()
                .to_string();
            assert!(e.contains(says) && e.contains("--instance"), "{bad}: {e}");
        }
    }

    fn scenario_file(expect_max_ms: f64) -> tempfile::NamedTempFile {
        let text = format!(
            r#"
name = "gate"
description = "a gate"
[load]
rate = 200
[population]
suppliers = 2
devices = 100
[[phase]]
name = "only"
duration = 0.5
[[mix]]
tag = "top-up"
weight = 1
srv = "2.2"
from = "supplier"
device = "own_prepayment"
[[expect]]
check = "max_latency"
lane = "L1"
percentile = 50.0
max_ms = {expect_max_ms}
"#
        );
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn a_failed_expectation_is_a_failed_run() {
        // The mock answers in 200 µs: p50 ≤ 1000 ms holds, p50 ≤ 0.001 ms cannot.
        for (bound, want) in [(1000.0, true), (0.001, false)] {
            let f = scenario_file(bound);
            let args = Args::parse_from([
                "loadgen",
                "--target",
                "mock",
                "--quiet",
                "--json",
                "--senders",
                "2",
                "--scenario",
                f.path().to_str().unwrap(),
            ]);
            assert_eq!(run_cli(args), Ok(want), "bound {bound}");
        }
    }

    #[test]
    fn misleading_parameters_are_refused() {
        let args = Args::parse_from([
            "loadgen",
            "--target",
            "mock",
            "--rate",
            "3",
            "--senders",
            "8",
        ]);
        let err = run_cli(args).unwrap_err();
        assert!(err.contains("below the number of senders"), "{err}");
        let args = Args::parse_from(["loadgen", "--scenario", "no-such-scenario"]);
        assert!(run_cli(args).unwrap_err().contains("built-in"));
    }
}
