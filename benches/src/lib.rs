//! Shared helpers for the criterion benches in `benches/benches/` (one `[[bench]]` per topic:
//! `verify`, `sha256`, `envelope`, `certstate`; pipeline and lane-scheduling benches go beside
//! them).
//!
//! Fixtures are deterministic (fixed seeds) so that runs compare.

use dcc_signing::envelope::Header;
use dcc_signing::{
    CertId, CommandVariant, Eui64, ExecutionKind, FastSigner, RequestId, Signer, Srv, UserRole,
};
use p256::ecdsa::SigningKey;

/// xorshift64*: a tiny deterministic generator for fixtures.
#[derive(Debug, Clone)]
pub struct FixtureRng(u64);

impl FixtureRng {
    /// A generator from a non-zero seed (zero is replaced).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// 32 random bytes.
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut b = [0u8; 32];
        for c in b.chunks_mut(8) {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        b
    }
}

/// A deterministic signer (seeded secret scalar).
pub fn signer(rng: &mut FixtureRng) -> Signer {
    loop {
        if let Ok(k) = SigningKey::from_bytes(&rng.bytes32().into()) {
            return Signer::new(k);
        }
    }
}

/// `count` signed digests: `(key index, digest, r ‖ s)`, keys chosen at random by the generator
/// so that consecutive verifications hit different keys when `keys > 1`. Signed with the fast
/// signer (the same bytes as `Signer::sign_prehash`, several times faster).
pub fn signed_digests(
    rng: &mut FixtureRng,
    signers: &[Signer],
    count: usize,
) -> Vec<(usize, [u8; 32], [u8; 64])> {
    let fast: Vec<Option<FastSigner>> = signers.iter().map(FastSigner::from_signer).collect();
    (0..count)
        .filter_map(|_| {
            let k = (rng.next_u64() % signers.len() as u64) as usize;
            let digest = rng.bytes32();
            let sig = fast_or_plain(fast.get(k)?.as_ref(), &signers[k], &digest)?;
            Some((k, digest, sig))
        })
        .collect()
}

/// A signed 64-byte message: the key's index, the message (for C libraries, which hash it
/// themselves), its SHA-256 digest (for the prehash verifiers) and `r ‖ s`.
#[derive(Debug, Clone)]
pub struct SignedMessage {
    /// Index of the signer.
    pub key: usize,
    /// The message.
    pub msg: [u8; 64],
    /// SHA-256 of `msg`.
    pub digest: [u8; 32],
    /// `r ‖ s`.
    pub sig: [u8; 64],
}

/// `per_key` signed messages for every key, shuffled: keys used evenly, consecutive
/// verifications on different keys.
pub fn evenly_signed_messages(
    rng: &mut FixtureRng,
    signers: &[Signer],
    per_key: usize,
) -> Vec<SignedMessage> {
    use sha2::{Digest, Sha256};
    let mut out = Vec::with_capacity(signers.len() * per_key);
    for (key, s) in signers.iter().enumerate() {
        let fast = FastSigner::from_signer(s);
        for _ in 0..per_key {
            let mut msg = [0u8; 64];
            msg[..32].copy_from_slice(&rng.bytes32());
            msg[32..].copy_from_slice(&rng.bytes32());
            let digest: [u8; 32] = Sha256::digest(msg).into();
            if let Some(sig) = fast_or_plain(fast.as_ref(), s, &digest) {
                out.push(SignedMessage {
                    key,
                    msg,
                    digest,
                    sig,
                });
            }
        }
    }
    // Fisher–Yates.
    for i in (1..out.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        out.swap(i, j);
    }
    out
}

/// `aws-lc-rs` verification keys for `signers`, parsed once (as prepared keys are).
#[cfg(feature = "compare-c")]
pub fn aws_parsed_keys(signers: &[Signer]) -> Vec<aws_lc_rs::signature::ParsedPublicKey> {
    use aws_lc_rs::signature::{ParsedPublicKey, ECDSA_P256_SHA256_FIXED};
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    signers
        .iter()
        .filter_map(|s| {
            let public = s.public_key().to_encoded_point(false);
            ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public.as_bytes()).ok()
        })
        .collect()
}

fn fast_or_plain(fast: Option<&FastSigner>, plain: &Signer, digest: &[u8; 32]) -> Option<[u8; 64]> {
    match fast {
        Some(f) => f.sign_prehash(digest).ok(),
        None => plain.sign_prehash(digest).ok(),
    }
}

pub mod svg;

pub mod interleave {
    //! Interleaved rate measurement for a shared, noisy machine: every contender gets a short
    //! time slice in turn, round after round, so that drift in the machine's load hits all alike;
    //! report each one's median over the rounds, and ratios between contenders of one run.

    use std::time::{Duration, Instant};

    /// A measurable thing: does some work, returns how many operations it did.
    pub type Work = Box<dyn FnMut() -> usize>;

    /// Runs every `work` for `slice` in turn, `rounds` times, calling `between` after each
    /// round. Returns each contender's rates (operations per second), one per round.
    pub fn run(
        work: &mut [(String, Work)],
        rounds: usize,
        slice: Duration,
        mut between: impl FnMut(usize),
    ) -> Vec<Vec<f64>> {
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); work.len()];
        for round in 0..rounds {
            for (i, (_, w)) in work.iter_mut().enumerate() {
                let start = Instant::now();
                let mut done = 0usize;
                while start.elapsed() < slice {
                    done += w();
                }
                rates[i].push(done as f64 / start.elapsed().as_secs_f64());
            }
            between(round);
        }
        rates
    }

    /// The median (the upper one of an even count); 0 for none.
    pub fn median(v: &[f64]) -> f64 {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }
}

/// A typical on-demand Service Request header signed by `signer`'s certificate `serial`.
pub fn sample_header(counter: u64, serial: u32) -> Header {
    Header {
        role: UserRole::ImportSupplier,
        command_variant: CommandVariant::NON_CRITICAL_WAN,
        execution: ExecutionKind::OnDemand,
        srv: Srv::new2(4, 1),
        request_id: RequestId {
            originator: Eui64::from_u64(0x90b3_d5ff_fe00_0001),
            target: Eui64::from_u64(0x0012_4b00_0000_0000 + counter % 1000),
            counter,
        },
        execute_at: 0,
        signer: cert_id(serial),
    }
}

/// `n` on-demand 3.1 requests (counters 1..=n) from `originator` to `target`, signed by a
/// fresh key under certificate `cert`: what the pipeline and durable-state benches submit.
/// Signed with the fixed-base table ([`dcc_signing::FastSigner`]: the same bytes as
/// [`Signer::sign_envelope`], a few times faster), so large fixtures are quick to make.
pub fn signed_requests(
    originator: Eui64,
    target: Eui64,
    cert: CertId,
    n: usize,
) -> (Signer, Vec<Vec<u8>>) {
    let signer = Signer::random();
    let fast = dcc_signing::FastSigner::from_signer(&signer)
        .unwrap_or_else(|| panic!("the generator table could not be built"));
    let requests = (0..n as u64)
        .map(|c| {
            let h = Header {
                role: UserRole::ImportSupplier,
                command_variant: CommandVariant::NON_CRITICAL_WAN,
                execution: ExecutionKind::OnDemand,
                srv: Srv::new2(3, 1),
                request_id: RequestId {
                    originator,
                    target,
                    counter: c + 1,
                },
                execute_at: 0,
                signer: cert,
            };
            fast.sign_envelope(&h, &[0x5A; 64])
                .unwrap_or_else(|e| panic!("signing a fixture request: {e}"))
        })
        .collect();
    (signer, requests)
}

/// A certificate id with a fixed issuer and the given serial.
pub fn cert_id(serial: u32) -> CertId {
    let issuer = CertId::issuer_hash_of(b"CN=bench issuing CA");
    let s = serial.max(1).to_be_bytes();
    CertId::new(issuer, &s).unwrap_or_else(|| unreachable_cert_id(issuer))
}

fn unreachable_cert_id(issuer: [u8; 8]) -> CertId {
    // `serial.max(1)` is non-zero and 4 bytes, so `CertId::new` cannot fail; this keeps the
    // library free of `unwrap` all the same.
    match CertId::new(issuer, &[1]) {
        Some(id) => id,
        None => panic!("CertId::new refused a one-byte non-zero serial"),
    }
}

pub mod threadcpu {
    //! CPU time per thread, read from Linux's `/proc/self/task/*/schedstat` (nanoseconds on CPU)
    //! and `comm` (the thread's name): lets one process measure its server side and its client
    //! side separately when each runs on threads of its own name.

    use std::collections::HashMap;

    /// CPU nanoseconds of every live thread, keyed by thread id, with its name.
    #[derive(Debug, Clone, Default)]
    pub struct Snapshot(HashMap<u32, (String, u64)>);

    impl Snapshot {
        /// Reads all threads of this process now (empty where `/proc` is not Linux's).
        pub fn now() -> Snapshot {
            let mut m = HashMap::new();
            let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
                return Snapshot(m);
            };
            for e in dir.flatten() {
                let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                let p = e.path();
                let name = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
                let ns = std::fs::read_to_string(p.join("schedstat"))
                    .ok()
                    .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                    .unwrap_or(0);
                m.insert(tid, (name.trim().to_owned(), ns));
            }
            Snapshot(m)
        }

        /// CPU nanoseconds spent since `earlier`, per thread name (threads of one name summed).
        pub fn since_by_name(&self, earlier: &Snapshot) -> HashMap<String, u64> {
            let mut out = HashMap::new();
            for (tid, (name, ns)) in &self.0 {
                let before = earlier.0.get(tid).map_or(0, |(_, n)| *n);
                *out.entry(name.clone()).or_insert(0) += ns.saturating_sub(before);
            }
            out
        }

        /// CPU nanoseconds spent since `earlier`, split by `is_a(thread name)`: `(a, rest)`.
        /// Threads that ended in between are lost (keep the measured threads alive).
        pub fn since_split(&self, earlier: &Snapshot, is_a: impl Fn(&str) -> bool) -> (u64, u64) {
            let (mut a, mut rest) = (0u64, 0u64);
            for (tid, (name, ns)) in &self.0 {
                let before = earlier.0.get(tid).map_or(0, |(_, n)| *n);
                let d = ns.saturating_sub(before);
                if is_a(name) {
                    a += d;
                } else {
                    rest += d;
                }
            }
            (a, rest)
        }
    }
}
