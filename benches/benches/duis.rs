//! DUIS XML verification on one core, next to the binary envelope, split into its parts —
//! parsing, canonicalisation (same pass), hashing (reference digest + SignedInfo) and ECDSA —
//! and next to xmlsec1 (libxmlsec1/OpenSSL, an independent XML-DSig implementation, run as a
//! process: per document, and amortised over many files in one process).
//!
//! The documents are 2.2 Top Up Device requests shaped like the DCC reference template
//! (`CS01a_2.2_SUCCESS_REQUEST_DUIS.XML`, 1.7 KB; the templates' median is 1.8 KB), signed by
//! `XmlSigner` under a demo-PKI certificate: the bench needs no vectors.
//!
//! Run on one core: `taskset -c 1 cargo bench -p dcc-benches --bench duis -- --warm-up-time 1
//! --measurement-time 3`. The xmlsec1 figures print after criterion's (skipped when xmlsec1 is
//! absent).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dcc_benches::{cert_id, signed_requests};
use dcc_signing::duis::{DuisRequest, XmlSigner};
use dcc_signing::envelope::Envelope;
use dcc_signing::pki::DemoPki;
use dcc_signing::verify::{KnownSignerVerifier, PreparedKey, Verifier};
use quick_xml::events::Event;

const DOCS: usize = 256;

struct Fixture {
    docs: Vec<Vec<u8>>,
    key: std::sync::Arc<dyn PreparedKey>,
    cert_pem: String,
}

fn request(counter: u64) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<sr:Request xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" schemaVersion="5.4">
  <sr:Header>
    <sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:{counter}</sr:RequestID>
    <sr:CommandVariant>1</sr:CommandVariant>
    <sr:ServiceReference>2.2</sr:ServiceReference>
    <sr:ServiceReferenceVariant>2.2</sr:ServiceReferenceVariant>
  </sr:Header>
  <sr:Body>
    <sr:TopUpDevice>
      <sr:UTRN>{:020}</sr:UTRN>
    </sr:TopUpDevice>
  </sr:Body>
</sr:Request>
"#,
        counter.wrapping_mul(7_394_614_433)
    )
}

fn fixture(verifier: &dyn Verifier) -> Fixture {
    let pki = DemoPki::generate_seeded(1_767_225_600, 1, 0xd0_15).unwrap();
    let user = pki.users.first().unwrap();
    let signer = XmlSigner::new(user.signer.clone(), &user.cert).unwrap();
    let docs: Vec<Vec<u8>> = (0..DOCS as u64)
        .map(|c| signer.sign_document(request(1_000 + c).as_bytes()).unwrap())
        .collect();
    let key = verifier.prepare(&user.cert.public_key);
    for d in &docs {
        DuisRequest::decode(d)
            .unwrap()
            .signed
            .verify(key.as_ref())
            .unwrap();
    }
    Fixture {
        docs,
        key,
        cert_pem: user.cert_pem.clone(),
    }
}

/// The quick-xml event loop alone, touching every event: the parsing share.
fn quick_xml_events(doc: &[u8]) -> usize {
    let mut r = quick_xml::Reader::from_reader(doc);
    let mut n = 0;
    loop {
        match r.read_event() {
            Ok(Event::Eof) | Err(_) => return n,
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => n += e.attributes().count() + 1,
            Ok(_) => n += 1,
        }
    }
}

/// Criterion iterations timed in this thread's CPU time, not wall time: the machine is shared
/// and a preempted iteration would otherwise count the neighbours' work.
fn cpu<R>(b: &mut criterion::Bencher<'_>, mut f: impl FnMut() -> R) {
    b.iter_custom(|iters| {
        let t = cpu_time::ThreadTime::now();
        for _ in 0..iters {
            black_box(f());
        }
        t.elapsed()
    })
}

fn bench(c: &mut Criterion) {
    let verifier = KnownSignerVerifier::default();
    let f = fixture(&verifier);
    let decoded: Vec<DuisRequest> = f
        .docs
        .iter()
        .map(|d| DuisRequest::decode(d).unwrap())
        .collect();
    let si_digests: Vec<[u8; 32]> = decoded
        .iter()
        .map(|d| d.signed.signature.signed_info_digest())
        .collect();
    let (env_signer, envelopes) = signed_requests(
        "90-B3-D5-1F-30-01-00-00".parse().unwrap(),
        "00-DB-12-34-56-78-90-A0".parse().unwrap(),
        cert_id(1),
        DOCS,
    );
    let env_key = verifier.prepare(&env_signer.public_key());

    let mut g = c.benchmark_group("duis");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    let mut next = || {
        i = i.wrapping_add(1);
        i % DOCS
    };
    g.bench_function("xml_verify_full", |b| {
        cpu(b, || {
            let d = &f.docs[next()];
            let r = DuisRequest::decode(black_box(d)).unwrap();
            black_box(r.signed.verify(f.key.as_ref()).is_ok())
        })
    });
    g.bench_function("envelope_verify_full", |b| {
        cpu(b, || {
            let e = Envelope::decode(black_box(&envelopes[next()])).unwrap();
            black_box(env_key.verify_prehash(&e.digest(), e.signature).is_ok())
        })
    });
    g.bench_function("part_parse_quick_xml_events", |b| {
        cpu(b, || {
            black_box(quick_xml_events(black_box(&f.docs[next()])))
        })
    });
    g.bench_function("part_parse_and_c14n_decode", |b| {
        cpu(b, || {
            black_box(DuisRequest::decode(black_box(&f.docs[next()])).is_ok())
        })
    });
    g.bench_function("part_hash_reference_and_signed_info", |b| {
        cpu(b, || {
            let d = &decoded[next()];
            black_box(d.signed.check_reference().is_ok());
            black_box(d.signed.signature.signed_info_digest())
        })
    });
    g.bench_function("part_ecdsa_known_signer", |b| {
        cpu(b, || {
            let k = next();
            black_box(
                f.key
                    .verify_prehash(&si_digests[k], &decoded[k].signed.signature.signature)
                    .is_ok(),
            )
        })
    });
    g.finish();
    xmlsec1(&f);
}

/// xmlsec1 over the same documents: one process per document, then all documents given to one
/// process (amortising start-up), both per document.
fn xmlsec1(f: &Fixture) {
    let ok = std::process::Command::new("xmlsec1")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        println!("duis/xmlsec1: skipped (xmlsec1 not installed)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, &f.cert_pem).unwrap();
    let files: Vec<_> = f
        .docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let p = dir.path().join(format!("d{i}.xml"));
            std::fs::write(&p, d).unwrap();
            p
        })
        .collect();
    // (wall time, the children's CPU time) of one xmlsec1 run over `files`.
    let run = |files: &[std::path::PathBuf]| -> (Duration, Duration) {
        let (t, c) = (Instant::now(), children_cpu());
        let out = std::process::Command::new("xmlsec1")
            .args(["--verify", "--pubkey-cert-pem"])
            .arg(&cert)
            .args(files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (t.elapsed(), children_cpu().saturating_sub(c))
    };
    let us = |d: Duration, k: usize| d.as_secs_f64() * 1e6 / k as f64;
    let report = |what: &str, (wall, cpu): (Duration, Duration), k: usize| {
        println!(
            "duis/{what}: {:.1} µs/doc CPU ({:.0} docs/s per core), {:.1} µs/doc wall, {k} documents",
            us(cpu, k),
            1e6 / us(cpu, k).max(1e-9),
            us(wall, k)
        );
    };
    let n = 64.min(files.len());
    let per_process = files[..n]
        .iter()
        .map(|p| run(std::slice::from_ref(p)))
        .fold((Duration::ZERO, Duration::ZERO), |a, b| {
            (a.0 + b.0, a.1 + b.1)
        });
    report("xmlsec1_process_per_document", per_process, n);
    // All documents to one process, four times over to outlast the 10 ms clock tick.
    let many: Vec<_> = (0..4).flat_map(|_| files.iter().cloned()).collect();
    report("xmlsec1_one_process", run(&many), many.len());
}

/// User + system CPU time of this process's waited-for children (`/proc/self/stat` fields 16
/// and 17, in clock ticks of 10 ms); zero where /proc is absent.
fn children_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    // rest starts at field 3 (the state letter): cutime is field 16, cstime 17.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| {
        f.get(n - 3)
            .and_then(|x| x.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((field(16) + field(17)) * 10)
}

criterion_group!(benches, bench);
criterion_main!(benches);
