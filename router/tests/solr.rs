//! Supplier of Last Resort, end to end: revocation delayed (MP134A) and device registration
//! (MP185).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dcc_router::{Lane, ResponseCode as C};
use dcc_signing::Srv;

#[test]
fn solr_flow() {
    let w = World::new();
    let (failed, srp, solr) = (&w.supplier, &w.srp, &w.supplier_b);
    let admin = w.router.admin();
    let safe_mode: Vec<Srv> = w.router.policy().catalogue.safe_mode_srvs().collect();
    assert!(safe_mode.contains(&"7.3".parse().unwrap()));

    // Before the event the SRP cannot use the Supplier's certificate.
    let r = w.send(
        Req::new(srp, "7.3", 5, w.prepay(), 1)
            .signed_with(failed.cert)
            .sign(failed),
    );
    assert_eq!(r.code, C::CertificateNotOwned);

    // The PMA delays the revocation, naming the SRP and the safe-mode set.
    admin
        .delay_revocation(
            &failed.cert,
            [srp.eui],
            safe_mode.iter().copied(),
            NOW + 14 * 86_400,
        )
        .unwrap();

    // SRP, safe-mode SRV (even a normally-L1 top up): passes, in L0, acting for the Supplier.
    for (i, (srv, cv)) in [("7.3", 5), ("2.2", 1), ("4.18", 1)]
        .into_iter()
        .enumerate()
    {
        let r = w.send(
            Req::new(srp, srv, cv, w.prepay(), 10 + i as u64)
                .signed_with(failed.cert)
                .sign(failed),
        );
        assert_eq!((r.code, r.lane), (C::Success, Some(Lane::L0)), "{srv}");
    }
    let log = w.recorder.snapshot();
    assert!(log
        .iter()
        .all(|d| d.acting_for == Some(failed.eui) && d.lane == Lane::L0));

    // SRP, non-safe-mode SRV: refused as revoked.
    let r = w.send(
        Req::new(srp, "3.1", 1, w.prepay(), 20)
            .signed_with(failed.cert)
            .sign(failed),
    );
    assert_eq!(r.code, C::CertificateRevoked);
    // The failed Supplier's own request, even a safe-mode one: refused.
    let r = w.send(Req::new(failed, "7.3", 5, w.prepay(), 21).sign(failed));
    assert_eq!(r.code, C::CertificateRevoked);
    // Another SRP (not named): refused.
    let r = w.send(
        Req::new(solr, "7.3", 5, w.prepay(), 22)
            .signed_with(failed.cert)
            .sign(failed),
    );
    assert_eq!(r.code, C::CertificateRevoked);

    // MP185: once a device moves to the SoLR, the SRP loses it, whatever the certificate state.
    admin.set_registered_supplier(w.credit(), solr.eui).unwrap();
    let r = w.send(
        Req::new(srp, "7.3", 5, w.credit(), 23)
            .signed_with(failed.cert)
            .sign(failed),
    );
    assert_eq!(r.code, C::NotAuthorisedForDevice);
    // …and the SoLR commands it with its own certificate.
    assert_eq!(
        w.send(Req::new(solr, "7.3", 5, w.credit(), 1).sign(solr))
            .code,
        C::Success
    );

    // The delay ends: everything signed with the certificate is refused.
    admin.end_delay(&failed.cert).unwrap();
    let r = w.send(
        Req::new(srp, "7.3", 5, w.prepay(), 30)
            .signed_with(failed.cert)
            .sign(failed),
    );
    assert_eq!(r.code, C::CertificateRevoked);
    let r = w.send(Req::new(failed, "7.3", 5, w.prepay(), 31).sign(failed));
    assert_eq!(r.code, C::CertificateRevoked);
    assert_eq!(w.recorder.snapshot().len(), 4);
}

#[test]
fn delay_expires_by_time() {
    let w = World::new();
    let (failed, srp) = (&w.supplier, &w.srp);
    let admin = w.router.admin();
    admin
        .delay_revocation(&failed.cert, [srp.eui], ["7.3".parse().unwrap()], NOW + 60)
        .unwrap();
    let req = |c| {
        Req::new(srp, "7.3", 5, w.prepay(), c)
            .signed_with(failed.cert)
            .sign(failed)
    };
    assert_eq!(w.send(req(1)).code, C::Success);
    w.clock.advance(60);
    assert_eq!(w.send(req(2)).code, C::CertificateRevoked);
    // A delay cannot be put on a revoked certificate, and needs SRPs and SRVs.
    admin.revoke(&failed.cert).unwrap();
    assert!(admin
        .delay_revocation(&failed.cert, [srp.eui], ["7.3".parse().unwrap()], NOW + 600)
        .is_err());
    assert!(admin
        .delay_revocation(&w.supplier_b.cert, [], ["7.3".parse().unwrap()], NOW + 600)
        .is_err());
}
