//! Durable state through the embedding API: an accepted request's anti-replay mark survives a
//! restart, and a store that cannot write refuses (R12 for requests, `store-write` for admin
//! changes) without acknowledging anything, then recovers by itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{Recorder, Req, World, NOW};
use dcc_router::store::{RedbStore, Store};
use dcc_router::{Clock, ResponseCode, Router};
use redb::backends::FileBackend;
use redb::StorageBackend;

/// A file backend whose writes and syncs fail while `fail` is set: a full disk, seen by redb.
#[derive(Debug)]
struct FaultyBackend {
    inner: FileBackend,
    fail: Arc<AtomicBool>,
}

impl FaultyBackend {
    fn check(&self) -> Result<(), std::io::Error> {
        if self.fail.load(Ordering::SeqCst) {
            Err(std::io::Error::other("No space left on device (injected)"))
        } else {
            Ok(())
        }
    }
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.check()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.check()?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.check()?;
        self.inner.write(offset, data)
    }
}

fn faulty_store(path: &std::path::Path, fail: &Arc<AtomicBool>) -> Arc<dyn Store> {
    let (p, f) = (path.to_path_buf(), Arc::clone(fail));
    Arc::new(
        RedbStore::open_with(
            path,
            Arc::new(move || {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&p)?;
                redb::Database::builder().create_with_backend(FaultyBackend {
                    inner: FileBackend::new(file)?,
                    fail: Arc::clone(&f),
                })
            }),
        )
        .unwrap(),
    )
}

#[test]
fn an_accepted_request_is_refused_as_a_replay_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&path).unwrap());
    let w = World::with_store(store);
    let s = &w.supplier;
    let accepted = Req::new(s, "2.2", 1, w.prepay(), 41).sign(s);
    let lower = Req::new(s, "2.2", 1, w.prepay(), 40).sign(s);
    let higher = Req::new(s, "2.2", 1, w.prepay(), 42).sign(s);
    assert_eq!(w.send(accepted.clone()).code, ResponseCode::Success);
    // Revocation of another User's certificate, made before the "crash".
    w.router.admin().revoke(&w.supplier_b.cert).unwrap();
    let b = &w.supplier_b;
    let by_b = Req::new(b, "2.2", 1, w.prepay(), 1).sign(b);
    w.router.shutdown();
    drop(w);

    // A new router over the same file: the state comes back from the store alone.
    let router = Router::builder()
        .store(Arc::new(RedbStore::open(&path).unwrap()))
        .dispatcher(Arc::new(Recorder::default()))
        .clock(Clock::manual(NOW))
        .workers(1)
        .build()
        .unwrap();
    let restored = router.admin().restore(None).unwrap();
    assert_eq!((restored.certs, restored.parties), (4, 4), "{restored:?}");
    assert_eq!(restored.originators, 1);
    let r = router.submit_blocking(accepted);
    assert_eq!(r.code, ResponseCode::Replayed, "{r:?}");
    // Below the durable mark, never accepted: refused too (the safe side, documented).
    assert_eq!(router.submit_blocking(lower).code, ResponseCode::Replayed);
    assert_eq!(router.submit_blocking(higher).code, ResponseCode::Success);
    // supplier-b's delegated-nothing request: its certificate stays revoked.
    let r = router.submit_blocking(by_b);
    assert_eq!(r.code, ResponseCode::CertificateRevoked, "{r:?}");
    router.shutdown();
}

#[test]
fn a_store_that_cannot_write_refuses_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let fail = Arc::new(AtomicBool::new(false));
    let w = World::with_store(faulty_store(&path, &fail));
    let s = &w.supplier;
    assert_eq!(
        w.send(Req::new(s, "2.2", 1, w.prepay(), 1).sign(s)).code,
        ResponseCode::Success
    );

    fail.store(true, Ordering::SeqCst);
    // A request: verified, but its anti-replay mark cannot be made durable → R12, not sent.
    let before = w.recorder.snapshot().len();
    let r = w.send(Req::new(s, "2.2", 1, w.prepay(), 2).sign(s));
    assert_eq!(r.code, ResponseCode::NotDurable, "{r:?}");
    assert_eq!(r.detail, Some("store-write-failed"));
    assert_eq!(w.recorder.snapshot().len(), before, "nothing dispatched");
    // An admin change: refused with the store's code, and not in force.
    let e = w.router.admin().revoke(&s.cert).unwrap_err();
    assert_eq!(e.code(), "store-write", "{e}");
    assert!(e.to_string().contains("state.redb"), "{e}");
    assert!(
        matches!(
            w.router.state().certs.get(&s.cert).unwrap().status(),
            dcc_router::CertStatus::Active
        ),
        "a change that is not durable is not applied"
    );

    fail.store(false, Ordering::SeqCst);
    // Recovered without a restart: the next request and admin change succeed.
    let r = w.send(Req::new(s, "2.2", 1, w.prepay(), 3).sign(s));
    assert_eq!(r.code, ResponseCode::Success, "{r:?}");
    w.router.admin().revoke(&s.cert).unwrap();
    assert_eq!(
        w.send(Req::new(s, "2.2", 1, w.prepay(), 4).sign(s)).code,
        ResponseCode::CertificateRevoked
    );
    w.router.shutdown();
}

#[test]
fn the_audit_log_records_who_what_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&dir.path().join("s.redb")).unwrap());
    let w = World::with_store(store);
    let admin = w.router.admin().acting_as(
        "admin 02-DC-C0-00-00-00-00-7F",
        Some("SMKI PMA decision of 30 Nov".into()),
    );
    admin.revoke(&w.supplier_b.cert).unwrap();
    let log = admin
        .audit(&dcc_router::store::AuditFilter {
            subject: Some(w.supplier_b.cert.to_string()),
            limit: 10,
        })
        .unwrap();
    let last = &log[0];
    assert_eq!(last.op, "revoke");
    assert_eq!(last.who, "admin 02-DC-C0-00-00-00-00-7F");
    assert_eq!(last.reason.as_deref(), Some("SMKI PMA decision of 30 Nov"));
    assert_eq!(last.at, NOW);
    // The World's own set-up is audited too, as the embedding API.
    assert!(log
        .iter()
        .any(|e| e.who == "embedding API" && e.op == "add-certificate"));
    w.router.shutdown();
}
