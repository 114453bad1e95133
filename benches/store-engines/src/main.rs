//! redb 4.x vs fjall 3.x on the router's durable-state workload.
//!
//! Every durable write really fsyncs (redb: `Durability::Immediate` -> fdatasync on the file;
//! fjall: `PersistMode::SyncAll` -> fsync on the journal). See README.md.
//!
//! Env knobs: `STOREBENCH_DIR` (parent of the temp dir, default `/work`),
//! `STOREBENCH_SECS` (seconds per group-commit point, default 3),
//! `STOREBENCH_DEVICES` (bulk-import size, default 1_000_000).

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use fjall::{Database as FjDb, Keyspace, KeyspaceCreateOptions, PersistMode};
use hdrhistogram::Histogram;
use redb::{
    Database as RDb, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};

type Res<T = ()> = Result<T, Box<dyn Error>>;

const MARKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("marks");
const ADMIN: TableDefinition<&[u8], &[u8]> = TableDefinition::new("admin");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
const DEVICES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("devices");

const ORIGINATORS: u64 = 200;
const GROUP_SIZES: [usize; 4] = [1, 16, 64, 256];
const IMPORT_BATCH: usize = 100_000;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn originator_key(rng: &mut Rng) -> [u8; 8] {
    // 200 distinct originators, spread over the key space.
    (rng.next() % ORIGINATORS)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .to_be_bytes()
}

fn admin_value(i: u64) -> Vec<u8> {
    let mut s = format!(
        "{{\"id\":\"route-{i:08}\",\"enabled\":true,\"priority\":{p},\"match\":{{\"prefix\":\"10.{a}.{b}.0/24\"}},\"action\":\"forward\",\"target\":\"upstream-{t}\",\"ttl\":3600",
        p = i % 10,
        a = i % 256,
        b = (i / 256) % 256,
        t = i % 7
    );
    while s.len() < 198 {
        s.push(' ');
    }
    s.push('}');
    s.into_bytes()
}

fn audit_value(i: u64) -> Vec<u8> {
    let mut s = format!(
        "{{\"seq\":{i},\"actor\":\"admin@example.invalid\",\"op\":\"upsert\",\"object\":\"route-{i:08}\",\"ts\":\"2026-01-01T00:00:00Z\",\"note\":\""
    );
    while s.len() < 298 {
        s.push('x');
    }
    s.push_str("\"}");
    s.into_bytes()
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

fn dir_size(p: &Path) -> u64 {
    let md = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(_) => return 0,
    };
    if md.is_file() {
        return md.len();
    }
    if md.is_dir() {
        return std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
            .unwrap_or(0);
    }
    0
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

// ---------------------------------------------------------------------------------------------
// Engine abstraction: just enough for the four workloads.
// ---------------------------------------------------------------------------------------------

trait Engine {
    /// One durable commit of `marks` (originator key, counter value).
    fn commit_marks(&mut self, marks: &[([u8; 8], [u8; 8])]) -> Res;
    /// One durable atomic admin record + audit record.
    fn commit_admin(&mut self, key: &[u8; 16], val: &[u8], seq: u64, audit: &[u8]) -> Res;
    /// One durable transaction of device records.
    fn import_batch(&mut self, devs: &[([u8; 8], [u8; 20])]) -> Res;
    /// Full scan of devices into memory.
    fn scan_devices(&self) -> Res<Vec<([u8; 8], [u8; 20])>>;
}

struct Redb {
    db: RDb,
}

impl Redb {
    fn create(path: &Path) -> Res<Self> {
        Ok(Self {
            db: RDb::create(path)?,
        })
    }
    fn open(path: &Path) -> Res<Self> {
        Ok(Self {
            db: RDb::open(path)?,
        })
    }
}

impl Engine for Redb {
    fn commit_marks(&mut self, marks: &[([u8; 8], [u8; 8])]) -> Res {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Immediate)?; // the default, made explicit
        {
            let mut t = tx.open_table(MARKS)?;
            for (k, v) in marks {
                t.insert(&k[..], &v[..])?;
            }
        }
        tx.commit()?; // returns after fdatasync
        Ok(())
    }

    fn commit_admin(&mut self, key: &[u8; 16], val: &[u8], seq: u64, audit: &[u8]) -> Res {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        {
            let mut a = tx.open_table(ADMIN)?;
            a.insert(&key[..], val)?;
            let mut l = tx.open_table(AUDIT)?;
            l.insert(seq, audit)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn import_batch(&mut self, devs: &[([u8; 8], [u8; 20])]) -> Res {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        {
            let mut t = tx.open_table(DEVICES)?;
            for (k, v) in devs {
                t.insert(&k[..], &v[..])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn scan_devices(&self) -> Res<Vec<([u8; 8], [u8; 20])>> {
        let rt = self.db.begin_read()?;
        let t = rt.open_table(DEVICES)?;
        let mut out = Vec::with_capacity(t.len()? as usize);
        for r in t.iter()? {
            let (k, v) = r?;
            out.push((k.value().try_into()?, v.value().try_into()?));
        }
        Ok(out)
    }
}

struct Fjall {
    db: FjDb,
    marks: Keyspace,
    admin: Keyspace,
    audit: Keyspace,
    devices: Keyspace,
    mode: PersistMode,
}

impl Fjall {
    fn open(path: &Path, mode: PersistMode) -> Res<Self> {
        let db = FjDb::builder(path).open()?;
        Ok(Self {
            marks: db.keyspace("marks", KeyspaceCreateOptions::default)?,
            admin: db.keyspace("admin", KeyspaceCreateOptions::default)?,
            audit: db.keyspace("audit", KeyspaceCreateOptions::default)?,
            devices: db.keyspace("devices", KeyspaceCreateOptions::default)?,
            db,
            mode,
        })
    }
}

impl Engine for Fjall {
    fn commit_marks(&mut self, marks: &[([u8; 8], [u8; 8])]) -> Res {
        // Batch is atomic; `durability(Some(SyncAll))` makes commit() write the journal and fsync
        // it under the journal lock before returning (same as commit() + db.persist(SyncAll)).
        let mut b = self.db.batch().durability(Some(self.mode));
        for (k, v) in marks {
            b.insert(&self.marks, k, v);
        }
        b.commit()?;
        Ok(())
    }

    fn commit_admin(&mut self, key: &[u8; 16], val: &[u8], seq: u64, audit: &[u8]) -> Res {
        let mut b = self.db.batch().durability(Some(self.mode));
        b.insert(&self.admin, key, val);
        b.insert(&self.audit, seq.to_be_bytes(), audit);
        b.commit()?;
        Ok(())
    }

    fn import_batch(&mut self, devs: &[([u8; 8], [u8; 20])]) -> Res {
        let mut b = fjall::OwnedWriteBatch::with_capacity(self.db.clone(), devs.len())
            .durability(Some(self.mode));
        for (k, v) in devs {
            b.insert(&self.devices, k, v);
        }
        b.commit()?;
        Ok(())
    }

    fn scan_devices(&self) -> Res<Vec<([u8; 8], [u8; 20])>> {
        let mut out = Vec::with_capacity(self.devices.approximate_len());
        for g in self.devices.iter() {
            let (k, v) = g.into_inner()?;
            out.push((k.as_ref().try_into()?, v.as_ref().try_into()?));
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------------------------

struct GroupRow {
    engine: &'static str,
    n: usize,
    commits: u64,
    secs: f64,
    p50_us: u64,
    p99_us: u64,
}

fn group_commit(
    engine: &'static str,
    e: &mut dyn Engine,
    n: usize,
    dur: Duration,
    rng: &mut Rng,
    counter: &mut u64,
) -> Res<GroupRow> {
    let mut h = hist();
    let mut buf = Vec::with_capacity(n);
    // warm-up: a few commits not measured
    for _ in 0..5 {
        buf.clear();
        for _ in 0..n {
            *counter += 1;
            buf.push((originator_key(rng), counter.to_be_bytes()));
        }
        e.commit_marks(&buf)?;
    }
    let start = Instant::now();
    let mut commits = 0u64;
    while start.elapsed() < dur {
        buf.clear();
        for _ in 0..n {
            *counter += 1;
            buf.push((originator_key(rng), counter.to_be_bytes()));
        }
        let t = Instant::now();
        e.commit_marks(&buf)?;
        h.saturating_record(t.elapsed().as_micros() as u64);
        commits += 1;
    }
    Ok(GroupRow {
        engine,
        n,
        commits,
        secs: start.elapsed().as_secs_f64(),
        p50_us: h.value_at_quantile(0.50),
        p99_us: h.value_at_quantile(0.99),
    })
}

fn admin_changes(e: &mut dyn Engine, dur: Duration) -> Res<(u64, f64, u64, u64)> {
    let mut h = hist();
    let start = Instant::now();
    let mut i = 0u64;
    while start.elapsed() < dur {
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(b"route://");
        key[8..].copy_from_slice(&(i % 64).to_be_bytes()); // 64 distinct admin objects
        let val = admin_value(i);
        let audit = audit_value(i);
        let t = Instant::now();
        e.commit_admin(&key, &val, i, &audit)?;
        h.saturating_record(t.elapsed().as_micros() as u64);
        i += 1;
    }
    Ok((
        i,
        start.elapsed().as_secs_f64(),
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.99),
    ))
}

struct BulkRow {
    import_s: f64,
    close_s: f64,
    open_s: f64,
    scan_s: f64,
    n_read: usize,
    bytes: u64,
    reopen_s: f64,
    check_s: Option<f64>,
}

fn gen_devices(count: usize) -> Vec<([u8; 8], [u8; 20])> {
    let mut rng = Rng(0xD1CE_5EED_0000_0001);
    (0..count)
        .map(|i| {
            // random EUI-64 (unsorted input, as an import file would be)
            let k = rng.next().to_be_bytes();
            let mut v = [0u8; 20];
            v[..8].copy_from_slice(&(i as u64).to_le_bytes());
            v[8..16].copy_from_slice(&rng.next().to_le_bytes());
            v[16..].copy_from_slice(&[1, 0, 0, 42]);
            (k, v)
        })
        .collect()
}

fn bulk_redb(dir: &Path, devs: &[([u8; 8], [u8; 20])]) -> Res<BulkRow> {
    let path = dir.join("devices.redb");
    let t = Instant::now();
    let mut e = Redb::create(&path)?;
    for chunk in devs.chunks(IMPORT_BATCH) {
        e.import_batch(chunk)?;
    }
    let import_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    e.db.close()?;
    let close_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let e = Redb::open(&path)?;
    let open_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let v = e.scan_devices()?;
    let scan_s = t.elapsed().as_secs_f64();
    let n_read = v.len();
    drop(v);
    e.db.close()?;
    let bytes = dir_size(&path);

    // 4. plain reopen of an existing store, then the explicit full integrity check
    let t = Instant::now();
    let mut db = RDb::open(&path)?;
    let reopen_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ok = db.check_integrity()?;
    let check_s = t.elapsed().as_secs_f64();
    assert!(ok, "redb check_integrity reported a repair");
    let t = Instant::now();
    db.compact()?;
    let compact_s = t.elapsed().as_secs_f64();
    db.close()?;
    println!(
        "redb: Database::compact() after import: {:.2} s, file {:.1} MiB -> {:.1} MiB",
        compact_s,
        mib(bytes),
        mib(dir_size(&path))
    );
    Ok(BulkRow {
        import_s,
        close_s,
        open_s,
        scan_s,
        n_read,
        bytes,
        reopen_s,
        check_s: Some(check_s),
    })
}

fn bulk_fjall(dir: &Path, devs: &[([u8; 8], [u8; 20])], flush: bool) -> Res<(BulkRow, u64)> {
    let path = dir.join(if flush {
        "devices-flushed.fjall"
    } else {
        "devices.fjall"
    });
    let t = Instant::now();
    let mut e = Fjall::open(&path, PersistMode::SyncAll)?;
    for chunk in devs.chunks(IMPORT_BATCH) {
        e.import_batch(chunk)?;
    }
    if flush {
        // #[doc(hidden)] in fjall 3.1: seal the memtable and wait until it is written as a table,
        // so the next open does not replay the journal.
        e.devices.rotate_memtable_and_wait()?;
    }
    let import_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    drop(e); // fjall closes on drop of the last handle
    let close_s = t.elapsed().as_secs_f64();
    let journal_bytes_after_import = std::fs::read_dir(&path)?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".jnl"))
        .map(|e| dir_size(&e.path()))
        .sum();

    let t = Instant::now();
    let e = Fjall::open(&path, PersistMode::SyncAll)?;
    let open_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let v = e.scan_devices()?;
    let scan_s = t.elapsed().as_secs_f64();
    let n_read = v.len();
    drop(v);
    drop(e);
    let bytes = dir_size(&path);

    let t = Instant::now();
    let e = Fjall::open(&path, PersistMode::SyncAll)?;
    let reopen_s = t.elapsed().as_secs_f64();
    drop(e);
    Ok((
        BulkRow {
            import_s,
            close_s,
            open_s,
            scan_s,
            n_read,
            bytes,
            reopen_s,
            check_s: None,
        },
        journal_bytes_after_import,
    ))
}

fn main() -> Res {
    let parent = std::env::var("STOREBENCH_DIR").unwrap_or_else(|_| "/work".into());
    let secs: f64 = std::env::var("STOREBENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let n_dev: usize = std::env::var("STOREBENCH_DEVICES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dur = Duration::from_secs_f64(secs);
    let tmp = tempfile::Builder::new()
        .prefix("storebench-")
        .tempdir_in(&parent)?;
    let dir = tmp.path();
    println!(
        "# store-engines bench: redb 4.x vs fjall 3.x  (dir {})",
        dir.display()
    );
    let total = Instant::now();

    // 1. group commit of anti-replay marks
    println!("\n## 1. group commit of anti-replay marks (8 B key from 200 originators, 8 B value), {secs} s per point");
    let mut rows = Vec::new();
    {
        let mut r = Redb::create(&dir.join("state.redb"))?;
        let mut f = Fjall::open(&dir.join("state.fjall"), PersistMode::SyncAll)?;
        let mut counter = 0u64;
        for &n in &GROUP_SIZES {
            let mut rng = Rng(0xA11CE + n as u64);
            rows.push(group_commit(
                "redb",
                &mut r,
                n,
                dur,
                &mut rng,
                &mut counter,
            )?);
            let mut rng = Rng(0xA11CE + n as u64);
            rows.push(group_commit(
                "fjall",
                &mut f,
                n,
                dur,
                &mut rng,
                &mut counter,
            )?);
        }
        // reference point: fjall with fdatasync (redb's commit uses fdatasync)
        f.mode = PersistMode::SyncData;
        let mut rng = Rng(0xBEEF);
        rows.push(group_commit(
            "fjall SyncData",
            &mut f,
            1,
            dur,
            &mut rng,
            &mut counter,
        )?);
        f.mode = PersistMode::SyncAll;

        println!(
            "| engine | N | commits/s | records/s | p50 commit | p99 commit |\n|---|---:|---:|---:|---:|---:|"
        );
        for row in &rows {
            let cps = row.commits as f64 / row.secs;
            println!(
                "| {} | {} | {:.0} | {:.0} | {} µs | {} µs |",
                row.engine,
                row.n,
                cps,
                cps * row.n as f64,
                row.p50_us,
                row.p99_us
            );
        }

        // 2. admin change
        let adur = Duration::from_secs_f64((secs * 2.0 / 3.0).max(0.5));
        println!("\n## 2. admin change: 16 B key + ~200 B JSON and u64 seq + ~300 B audit, atomic + durable ({:.0} s each)", adur.as_secs_f64());
        println!("| engine | commits | commits/s | p50 | p99 |\n|---|---:|---:|---:|---:|");
        for (name, e) in [
            ("redb", &mut r as &mut dyn Engine),
            ("fjall", &mut f as &mut dyn Engine),
        ] {
            let (n, s, p50, p99) = admin_changes(e, adur)?;
            println!(
                "| {name} | {n} | {:.0} | {p50} µs | {p99} µs |",
                n as f64 / s
            );
        }
        r.db.close()?;
    }
    let state_redb = dir_size(&dir.join("state.redb"));
    let state_fjall = dir_size(&dir.join("state.fjall"));
    println!("\n## 4a. reopen of the state store written by 1+2");
    let t = Instant::now();
    let mut db = RDb::open(dir.join("state.redb"))?;
    let r_open = t.elapsed();
    let t = Instant::now();
    assert!(db.check_integrity()?);
    let r_check = t.elapsed();
    db.close()?;
    let t = Instant::now();
    let f = Fjall::open(&dir.join("state.fjall"), PersistMode::SyncAll)?;
    let f_open = t.elapsed();
    let n_marks = f.marks.len()?;
    drop(f);
    println!("| engine | size on disk | open | integrity check |\n|---|---:|---:|---:|");
    println!(
        "| redb | {:.2} MiB | {:.1} ms | {:.1} ms |",
        mib(state_redb),
        r_open.as_secs_f64() * 1e3,
        r_check.as_secs_f64() * 1e3
    );
    println!(
        "| fjall | {:.2} MiB (journal preallocated) | {:.1} ms (journal replay; {} marks live) | n/a |",
        mib(state_fjall),
        f_open.as_secs_f64() * 1e3,
        n_marks
    );

    // 3 + 4. bulk import, reopen + full scan, open cost, integrity check
    println!("\n## 3 + 4b. bulk import of {n_dev} devices (8 B EUI-64, 20 B value), {IMPORT_BATCH} per durable transaction; close; reopen + full scan into Vec");
    let devs = gen_devices(n_dev);
    let rb = bulk_redb(dir, &devs)?;
    let (fb, fj_journal) = bulk_fjall(dir, &devs, false)?;
    let (fbf, fjf_journal) = bulk_fjall(dir, &devs, true)?;
    drop(devs);
    println!("| engine | import | close | open (1st) | full scan | rows read | size on disk | open (existing) | integrity check |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, b) in [
        ("redb", &rb),
        ("fjall", &fb),
        ("fjall, memtable flushed after import", &fbf),
    ] {
        println!(
            "| {name} | {:.2} s | {:.3} s | {:.1} ms | {:.2} s | {} | {:.1} MiB | {:.1} ms | {} |",
            b.import_s,
            b.close_s,
            b.open_s * 1e3,
            b.scan_s,
            b.n_read,
            mib(b.bytes),
            b.reopen_s * 1e3,
            b.check_s
                .map(|s| format!("{s:.2} s (`check_integrity`)"))
                .unwrap_or_else(|| "n/a (no API; block checksums verified on read)".into())
        );
    }
    println!(
        "fjall *.jnl bytes after import (replayed on open): {:.1} MiB default, {:.1} MiB flushed",
        mib(fj_journal),
        mib(fjf_journal)
    );
    assert_eq!(rb.n_read, n_dev);
    assert_eq!(fb.n_read, n_dev);
    assert_eq!(fbf.n_read, n_dev);
    println!("\ntotal wall time: {:.1} s", total.elapsed().as_secs_f64());
    if std::env::var_os("STOREBENCH_KEEP").is_some() {
        println!("kept {}", tmp.keep().display());
    }
    Ok(())
}
