//! Egress: the [`Dispatcher`] trait an embedding program implements to send verified,
//! committed requests on (to the SM WAN, a test double, a log), and [`SimulatedWan`], the
//! default.

mod simulated_wan;

pub use simulated_wan::{SimulatedWan, WanModel};

use dcc_signing::duis::SignedDuis;
use dcc_signing::envelope::Header;
use dcc_signing::envelope::{HEADER_LEN, SIGNATURE_LEN};
use dcc_signing::Eui64;

use crate::pipeline::lanes::Lane;
use crate::pipeline::Reply;
use crate::response::ResponseCode;
use crate::state::WanState;

/// A request that passed every check, handed to the dispatcher.
#[derive(Debug)]
pub struct Command {
    /// The decoded header (Request ID, SRV, CV, execution…).
    pub header: Header,
    /// The lane it travelled in.
    pub lane: Lane,
    /// For an SRP under a revocation delay: the failed Supplier it acts for.
    pub acting_for: Option<Eui64>,
    /// The signed request as it arrived.
    pub request: Signed,
    /// The target device's SM WAN state at hand-off (DP094; `ok` for non-device requests).
    pub wan: WanState,
    /// SRV 6.23 (ECoS): the CoS Party's counter-signature over
    /// [`Command::counter_signed_message`] ([`crate::pipeline::cos`]); `None` for every
    /// other SRV.
    pub cos: Option<CosCounterSignature>,
}

/// The CoS Party's counter-signature of an SRV 6.23 request: ECDSA P-256 over SHA-256 of
/// [`Command::counter_signed_message`], by the CoS key matching the certificate the device
/// holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosCounterSignature {
    /// The router key that signed ([`crate::state::RouterKey::id`]).
    pub key_id: std::sync::Arc<str>,
    /// The CoS certificate the device holds, which the key matches.
    pub certificate: crate::state::CosCertificate,
    /// The signature, `r || s` (64 bytes).
    pub signature: [u8; 64],
}

impl CosCounterSignature {
    /// Whether it verifies over `message` under `key` (the public key of the CoS certificate).
    pub fn verifies(&self, key: &p256::PublicKey, message: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier as _;
        let Ok(sig) = p256::ecdsa::Signature::from_slice(&self.signature) else {
            return false;
        };
        p256::ecdsa::VerifyingKey::from(key)
            .verify(message, &sig)
            .is_ok()
    }
}

/// A signed request as it arrived, in the form its ingress speaks.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Signed {
    /// The router's binary envelope (QUIC ingress, embedders).
    Envelope(Vec<u8>),
    /// A DUIS XML document with its XML-DSig signature (HTTPS ingress).
    Duis(Box<SignedDuis>),
}

impl Command {
    /// What the CoS Party counter-signs: the User's request *with its signature* — the whole
    /// envelope as it arrived, or the DUIS document's canonical form followed by its
    /// signature value.
    pub fn counter_signed_message(&self) -> std::borrow::Cow<'_, [u8]> {
        counter_signed_message(&self.request)
    }

    /// The body: the envelope's payload (e.g. GBCS), or the DUIS document in its canonical
    /// form without the signature.
    pub fn body(&self) -> &[u8] {
        match &self.request {
            Signed::Envelope(envelope) => {
                let end = envelope.len().saturating_sub(SIGNATURE_LEN);
                envelope.get(HEADER_LEN..end).unwrap_or_default()
            }
            Signed::Duis(d) => d.document.canonical(),
        }
    }
}

/// [`Command::counter_signed_message`] of a request.
pub(crate) fn counter_signed_message(request: &Signed) -> std::borrow::Cow<'_, [u8]> {
    match request {
        Signed::Envelope(envelope) => std::borrow::Cow::Borrowed(envelope),
        Signed::Duis(d) => {
            let mut m = d.document.canonical().to_vec();
            m.extend_from_slice(&d.signature.signature);
            std::borrow::Cow::Owned(m)
        }
    }
}

/// How a dispatcher answers. Dropping it unanswered answers E21 (no response from the device).
///
/// For future-dated and scheduled requests the router has already answered I99 when the
/// dispatcher receives the command; this reply is then *detached* and answering it is a no-op.
#[derive(Debug)]
pub struct DispatchReply {
    reply: Option<Reply>,
}

impl DispatchReply {
    pub(crate) fn awaiting(reply: Reply) -> Self {
        DispatchReply { reply: Some(reply) }
    }

    pub(crate) fn detached() -> Self {
        DispatchReply { reply: None }
    }

    /// Whether the caller still waits for this answer.
    pub fn is_awaited(&self) -> bool {
        self.reply.is_some()
    }

    /// The device answered: I0.
    pub fn delivered(self) {
        self.answer(ResponseCode::Success, None);
    }

    /// The device could not be reached: E20.
    pub fn unreachable(self) {
        self.answer(ResponseCode::DeviceUnreachable, None);
    }

    /// The device did not answer: E21.
    pub fn no_response(self) {
        self.answer(ResponseCode::NoDeviceResponse, None);
    }

    fn answer(mut self, code: ResponseCode, detail: Option<&'static str>) {
        if let Some(r) = self.reply.take() {
            r.send(code, detail);
        }
    }
}

impl Drop for DispatchReply {
    fn drop(&mut self) {
        if let Some(r) = self.reply.take() {
            r.send(
                ResponseCode::NoDeviceResponse,
                Some("dropped-by-dispatcher"),
            );
        }
    }
}

/// Sends committed requests on.
///
/// `dispatch` is called on a verify worker while the signer certificate's state is read-locked
/// (that is what makes "nothing dispatched after a revocation returned" hold), so it must only
/// hand the command off — queue it, answer later from another thread — and must never call
/// [`crate::AdminHandle`], which would wait for it.
pub trait Dispatcher: Send + Sync + std::fmt::Debug + 'static {
    /// Takes a command; answer through `reply` now or later, from any thread.
    fn dispatch(&self, command: Command, reply: DispatchReply);
}
