//! Embedding the router: build it, load state through the admin handle, submit signed
//! requests from tokio, read the counters, walk through a SoLR event.
//!
//! `cargo run -p dcc-router-core --example embed`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use dcc_router_core::state::CertRecord;
use dcc_router_core::{Device, Party, PaymentMode, Policy, Router, SimulatedWan, State, WanModel};
use dcc_signing::envelope::Header;
use dcc_signing::{CertId, CommandVariant, Eui64, ExecutionKind, RequestId, Signer, Srv, UserRole};

fn request(
    signer: &Signer,
    cert: CertId,
    from: Eui64,
    to: Eui64,
    srv: &str,
    cv: u8,
    counter: u64,
) -> Vec<u8> {
    let header = Header {
        role: UserRole::ImportSupplier,
        command_variant: CommandVariant::new(cv).unwrap(),
        execution: ExecutionKind::OnDemand,
        srv: srv.parse::<Srv>().unwrap(),
        request_id: RequestId {
            originator: from,
            target: to,
            counter,
        },
        execute_at: 0,
        signer: cert,
    };
    signer.sign_envelope(&header, b"gbcs payload").unwrap()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Build: policy (embedded default), empty state, a simulated WAN with 20–30 ms latency.
    let router = Router::builder()
        .policy(Policy::default())
        .state(Arc::new(State::new()))
        .dispatcher(Arc::new(SimulatedWan::new(WanModel {
            base: Duration::from_millis(20),
            jitter: Duration::from_millis(10),
            seed: 7,
        })))
        .workers(2)
        .build()?;

    // 2. State: a Supplier with its Organisation Certificate, an SRP, a prepayment meter.
    let supplier = Eui64::from_u64(0x90B3_D51F_3001_0000);
    let srp = Eui64::from_u64(0x90B3_D51F_30AA_0000);
    let meter = Eui64::from_u64(0x00DB_1234_5678_0002);
    let key = Signer::random();
    let cert = CertId::new([0xCA; 8], &[0x01]).unwrap();
    let admin = router.admin();
    admin
        .upsert_party(supplier, Party::approved(&[UserRole::ImportSupplier]))
        .unwrap();
    admin
        .upsert_party(srp, Party::approved(&[UserRole::ImportSupplier]))
        .unwrap();
    admin.add_certificate(CertRecord {
        id: cert,
        owner: supplier,
        public_key: key.public_key(),
        not_before: 0,
        not_after: u64::MAX,
    })?;
    let mut device = Device::new(supplier);
    device.payment_mode = PaymentMode::Prepayment;
    admin.upsert_device(meter, device).unwrap();

    // 3. Submit: a top-up (L1), a display message to a prepayment meter (promoted to L1),
    //    a read (L3) and a replay of the top-up.
    let top_up = request(&key, cert, supplier, meter, "2.2", 1, 1);
    let answers = futures_join(vec![
        router.submit(top_up.clone()),
        router.submit(request(&key, cert, supplier, meter, "3.1", 1, 2)),
        router.submit(request(&key, cert, supplier, meter, "4.1.1", 1, 3)),
    ])
    .await;
    for r in answers {
        println!(
            "{:<60} {:>4} {:?} in {:?}",
            r.request_id.unwrap().to_string(),
            r.code.code(),
            r.lane,
            r.timings.total
        );
    }
    println!("replayed top-up: {}", router.submit(top_up).await.code);

    // 4. SoLR: the Supplier fails; the PMA delays revocation for the SRP's safe-mode requests.
    let safe_mode: Vec<Srv> = router.policy().catalogue.safe_mode_srvs().collect();
    admin.delay_revocation(&cert, [srp], safe_mode, u64::MAX)?;
    let by_srp = router
        .submit(request(&key, cert, srp, meter, "7.3", 5, 1))
        .await;
    println!(
        "SRP arms supply under the delay: {} in {:?}",
        by_srp.code, by_srp.lane
    );
    let own = router
        .submit(request(&key, cert, supplier, meter, "2.2", 1, 4))
        .await;
    println!("failed Supplier's own top-up: {}", own.code);
    admin.end_delay(&cert)?;
    let after = router
        .submit(request(&key, cert, srp, meter, "7.3", 5, 2))
        .await;
    println!("SRP after the delay ended: {}", after.code);

    // 5. Counters per lane and outcome.
    for (lane, code, n) in router.counters().iter() {
        println!(
            "  {:>4} {:<4} {n}",
            lane.map_or("-".into(), |l| l.to_string()),
            code.code()
        );
    }
    router.shutdown();
    Ok(())
}

/// Awaits several responses (without pulling in the `futures` crate).
async fn futures_join(fs: Vec<dcc_router_core::ResponseFuture>) -> Vec<dcc_router_core::Response> {
    let mut out = Vec::with_capacity(fs.len());
    for f in fs {
        out.push(f.await);
    }
    out
}
