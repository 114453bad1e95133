//! Stage 6a: the CoS Party — SRV 6.23 CoS Update Security Credentials under Enduring Change
//! of Supplier. After the usual checks (admission, signature, commit), and before the
//! dispatcher sees it, the gaining Supplier's 6.23 is counter-signed by the CoS Party "with the
//! CoS key matching the certificate the device holds (TCoS or ECoS)" (domain.md, "The DCC's
//! own keys"; beis-2021-ecos-smki-response.txt 3.1, "the proposed revised processing of
//! Service Reference Variant 6.23 (CoS Update Security Credentials) Service Requests that
//! would apply from ECoS live").
//!
//! | # | check | where | refusal |
//! |---|-------|-------|---------|
//! | 1 | the sender is not already the device's registered Supplier (a 6.23 replaces the *losing* Supplier's credentials) | admission, check 9c | E4 `already-registered-supplier` |
//! | 2 | the sender is the gaining Supplier of a pending Change of Supplier for the device ([`AdminHandle::set_gaining_supplier`](crate::AdminHandle::set_gaining_supplier), from registration data) — the Party, whichever of its MPIDs: a Supplier with several MPIDs is one Party, one key choice (no "split suppliers", beis-2021-ecos-smki-response.txt 3.1) | admission, check 9c | E4 `not-gaining-supplier` |
//! | 3 | the router holds a CoS Party key for the CoS certificate the device holds ([`Device::cos`](crate::state::Device::cos)): TCoS → a `tcos` key, ECoS → an `ecos` key | admission (before the counter is spent) and here (a key retired meanwhile) | R13 `no-tcos-key` / `no-ecos-key` |
//! | 4 | counter-sign: ECDSA P-256 over SHA-256 of the request with the User's signature ([`Command::counter_signed_message`](crate::egress::Command::counter_signed_message)), with one of the purpose's keys in force (during a BEIS 2022 key transfer the old and new holder take turns: [`RouterKeys::serving`](crate::state::RouterKeys::serving)); the [`Command`](crate::egress::Command) carries it as [`CosCounterSignature`] | here | R13 `cos-signing-failed` |
//!
//! On success, once the command is handed off, the device's registered (import / gas) Supplier
//! becomes the gaining Supplier and the pending change is cleared — a durable, audited effect
//! naming the key that signed (`pipeline/effects.rs`). A Supplier holding several MPIDs is one
//! Party keyed by its User ID (EUI-64): the router never chooses a key by MPID (the CoS key
//! depends only on the device's certificate), and the device moves to the Party, whichever of
//! its roles (Import Supplier, Gas Supplier) sent the 6.23.

use std::sync::Arc;

use dcc_signing::envelope::Header;
use dcc_signing::Srv;
use sha2::{Digest, Sha256};

use crate::egress::{counter_signed_message, CosCounterSignature, Signed};
use crate::response::ResponseCode;
use crate::state::{CosCertificate, Device, KeyPurpose, State};

/// SRV 6.23 CoS Update Security Credentials.
pub const SRV_COS_UPDATE: Srv = Srv::new2(6, 23);

/// Whether `h` is a request the CoS Party counter-signs.
pub(crate) fn applies(h: &Header) -> bool {
    h.srv == SRV_COS_UPDATE
}

fn no_key(cert: CosCertificate) -> &'static str {
    match cert {
        CosCertificate::Ecos => "no-ecos-key",
        _ => "no-tcos-key",
    }
}

/// Checks 1–3, at admission (check 9c), in place of the registered-supplier check.
pub(crate) fn admit(
    state: &State,
    h: &Header,
    device: &Device,
) -> Result<(), (ResponseCode, &'static str)> {
    let sender = h.request_id.originator;
    if device.supplier == Some(sender) {
        return Err((
            ResponseCode::NotAuthorisedForDevice,
            "already-registered-supplier",
        ));
    }
    if state.gaining.get(h.request_id.target) != Some(sender) {
        return Err((ResponseCode::NotAuthorisedForDevice, "not-gaining-supplier"));
    }
    let purpose = KeyPurpose::for_certificate(device.cos);
    if !state.keys.all().iter().any(|k| k.purpose == purpose) {
        return Err((ResponseCode::CosKeyUnavailable, no_key(device.cos)));
    }
    Ok(())
}

/// Checks 3–4 at hand-off: the counter-signature, or why there is none.
pub(crate) fn counter_sign(
    state: &State,
    h: &Header,
    request: &Signed,
) -> Result<CosCounterSignature, (ResponseCode, &'static str)> {
    let cert = state
        .devices
        .get(h.request_id.target)
        .map_or(CosCertificate::Tcos, |d| d.cos);
    let key = state
        .keys
        .serving(KeyPurpose::for_certificate(cert))
        .ok_or((ResponseCode::CosKeyUnavailable, no_key(cert)))?;
    let digest: [u8; 32] = Sha256::digest(counter_signed_message(request)).into();
    let signature = key
        .signer
        .sign_prehash(&digest)
        .map_err(|_| (ResponseCode::CosKeyUnavailable, "cos-signing-failed"))?;
    Ok(CosCounterSignature {
        key_id: Arc::from(key.id.as_str()),
        certificate: cert,
        signature,
    })
}
