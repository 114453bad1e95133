//! Bulk device import files (JSON lines or CSV, `dcc-router admin import-devices`) and the
//! store's fixed-size device records (read back from disk).
//!
//! The first input byte chooses: even, the rest is written to a file and read with
//! `read_device_file`, which never panics and whose rows survive the admin protocol's JSON;
//! odd, the rest is decoded as a device record, which never panics, and what decodes
//! re-encodes to a record that decodes to the same device.
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

use dcc_router::cli::read_device_file;
use dcc_router::server::admin_proto::DeviceRow;
use dcc_router::store::{decode_device, encode_device};
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        // tmpfs where there is one: a disk file write per input is ~10x slower.
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        dir.join(format!("dcc-fuzz-devices-{}.txt", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let path = scratch();
        std::fs::write(path, rest).expect("write the scratch file");
        match read_device_file(path) {
            Ok(rows) => {
                for row in rows {
                    let json = serde_json::to_vec(&row).expect("a DeviceRow encodes");
                    assert_eq!(
                        serde_json::from_slice::<DeviceRow>(&json).expect("it decodes"),
                        row
                    );
                }
            }
            Err(e) => assert!(
                e.to_string().starts_with(&path.display().to_string()),
                "error without the file name: {e}"
            ),
        }
    } else if let Ok(d) = decode_device(rest) {
        assert_eq!(decode_device(&encode_device(&d)), Ok(d));
    }
});
