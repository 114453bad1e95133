//! Shared helpers for the criterion benches in `benches/benches/` (one `[[bench]]` per topic:
//! `verify`, `sha256`, `envelope`, `certstate`; pipeline and lane-scheduling benches go beside
//! them).
//!
//! Fixtures are deterministic (fixed seeds) so that runs compare.

use dcc_signing::envelope::Header;
use dcc_signing::{CertId, CommandVariant, Eui64, ExecutionKind, RequestId, Signer, Srv, UserRole};
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

/// `count` signed digests: `(key index, digest, r ‖ s)`, keys chosen round-robin... shuffled by
/// the generator so that consecutive verifications hit different keys when `keys > 1`.
pub fn signed_digests(
    rng: &mut FixtureRng,
    signers: &[Signer],
    count: usize,
) -> Vec<(usize, [u8; 32], [u8; 64])> {
    (0..count)
        .filter_map(|_| {
            let k = (rng.next_u64() % signers.len() as u64) as usize;
            let digest = rng.bytes32();
            let sig = signers[k].sign_prehash(&digest).ok()?;
            Some((k, digest, sig))
        })
        .collect()
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

/// A certificate id with a fixed issuer and the given serial.
/// `n` on-demand 3.1 requests (counters 1..=n) from `originator` to `target`, signed by a
/// fresh key under certificate `cert`: what the pipeline and durable-state benches submit.
pub fn signed_requests(
    originator: Eui64,
    target: Eui64,
    cert: CertId,
    n: usize,
) -> (Signer, Vec<Vec<u8>>) {
    let signer = Signer::random();
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
            signer
                .sign_envelope(&h, &[0x5A; 64])
                .unwrap_or_else(|e| panic!("signing a fixture request: {e}"))
        })
        .collect();
    (signer, requests)
}

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
