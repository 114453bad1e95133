//! The XML half of the DUIS ingress: a DUIS request in, a signed DUIS answer out.
//!
//! | step | where | answer when it fails |
//! |------|-------|----------------------|
//! | parse and check (bounded, no DOCTYPE/entities, RequestID, SRV, CV for the SRV, signature of the DUIS form) | [`DuisRequest::decode`], on the connection's task (no hashing, no ECDSA) | the parse error's code (`R1`, `E12`, `R6` no signature), an acknowledgement with the RequestID when it was read |
//! | the command variant belongs on this service's path | here | `E13` |
//! | admission (check 0 binds the TLS client's User to the originator), lanes, Reference digest and ECDSA on a worker, anti-replay, dispatch | [`Router::submit_duis`] | the router's code |
//! | the answer, signed with the DCC XML-signing key | here, on the thread that produced the answer | — |
//!
//! Answers are `sr:Response` documents signed as DCC Boxed signs its own (exclusive C14N of
//! SignedInfo, enveloped Reference over inclusive C14N, ECDSA P-256 r‖s, signer by
//! `X509IssuerSerial`): `I0` with a ResponseID; `I99` and refusals as acknowledgements (no
//! ResponseID), as DCC Boxed sends them. A CV 4 request on the Transform service that passes
//! every check answers `I0` with a `PreCommand` whose GBCS payload is a placeholder (the
//! router simulates the SM WAN; it has no GBCS to transform); its counter stays unspent, and
//! the Signed Pre-Command (CV 5–7, same RequestID, on Send Command) is admitted only while
//! that transform is outstanding (`state::transforms` in the core).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dcc_signing::duis::{DuisRequest, DuisResponse, ResponseBody, XmlSigner};
use dcc_signing::pki::{CertificateAuthority, OrgCertRequest, OrgCertificate};
use dcc_signing::{Eui64, RemotePartyRole, RequestId, Signer, Srv};

use super::metrics::Metrics;
use crate::ingress::https::{DuisHandler, DuisService, HandlerFuture, HttpAnswer};
use crate::ingress::identity::PeerIdentity;
use crate::{Response, ResponseCode, Router, Sender};

/// Why the DUIS signing identity could not be loaded or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DuisSetupError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The key or certificate was refused.
    #[error("{path}: {source}")]
    Pki {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: dcc_signing::pki::PkiError,
    },
    /// The key does not sign for the certificate, or the certificate is not usable.
    #[error("DUIS signing identity: {0}")]
    Signer(#[from] dcc_signing::duis::DuisError),
    /// Only one of `duis_signing_key` and `duis_signing_cert` is set.
    #[error("duis_signing_key and duis_signing_cert go together: set both or neither")]
    HalfConfigured,
}

/// The folder under the data directory holding the signing identity made at first start.
pub const SIGNING_DIR: &str = "dcc-xml-sign";

/// The DCC XML-signing identity: the configured key and certificate, or the one in
/// `data_dir/dcc-xml-sign/`, made at first start (a P-256 key and an Organisation
/// Certificate with role `89`, DCC XML signing, for the DCC's EUI-64). Clients pin its
/// certificate, as DCC Boxed's clients pin DCC Boxed's `dsp-xml-sign` certificate; to answer as
/// DCC Boxed does, configure that key and certificate.
///
/// The made one's private key lives in the router's store (issue 13 item 8: the router holds
/// its own keys): `stored` are the store's `duis-sign` keys; the one whose public key is the
/// certificate's signs. Where none is (the first start, or a data directory from before the
/// keys moved into the store), the key file is read and returned as `to_import`: the caller
/// moves it into the store and then removes the file. A configured key and certificate are
/// used as they are.
pub fn signing_identity(
    key: Option<&Path>,
    cert: Option<&Path>,
    data_dir: &Path,
    dcc_eui: Eui64,
    now: u64,
    stored: &[Arc<crate::state::RouterKey>],
) -> Result<SigningIdentity, DuisSetupError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| DuisSetupError::Io {
            path: p.to_path_buf(),
            source,
        })
    };
    let (key_path, cert_path, made) = match (key, cert) {
        (Some(k), Some(c)) => (k.to_path_buf(), c.to_path_buf(), false),
        (None, None) => {
            let dir = data_dir.join(SIGNING_DIR);
            let (k, c) = (dir.join("key.pem"), dir.join("cert.pem"));
            if !c.exists() {
                create(&dir, &k, &c, dcc_eui, now)?;
            }
            (k, c, true)
        }
        _ => return Err(DuisSetupError::HalfConfigured),
    };
    let cert = OrgCertificate::parse(&read(&cert_path)?).map_err(|source| DuisSetupError::Pki {
        path: cert_path.clone(),
        source,
    })?;
    let in_store = made
        .then(|| {
            stored
                .iter()
                .find(|k| k.signer.public_key() == cert.public_key)
        })
        .flatten();
    let (signer, to_import) = match in_store {
        Some(k) => (k.signer.clone(), None),
        None => {
            let pem = read(&key_path)?;
            let signer = Signer::from_pkcs8(&pem).map_err(|e| DuisSetupError::Pki {
                path: key_path.clone(),
                source: dcc_signing::pki::PkiError::Key(e.to_string()),
            })?;
            (signer, made.then_some((key_path, pem)))
        }
    };
    Ok(SigningIdentity {
        signer: XmlSigner::new(signer, &cert)?,
        public_key: cert.public_key,
        cert: cert_path,
        to_import,
    })
}

/// What [`signing_identity`] found.
#[derive(Debug)]
pub struct SigningIdentity {
    /// The signer, with its certificate.
    pub signer: XmlSigner,
    /// The certificate's public key.
    pub public_key: p256::PublicKey,
    /// The certificate file (clients pin it).
    pub cert: PathBuf,
    /// A key file to move into the store (its path and PEM), when the store held no key for
    /// the certificate.
    pub to_import: Option<(PathBuf, Vec<u8>)>,
}

fn create(
    dir: &Path,
    key: &Path,
    cert: &Path,
    dcc_eui: Eui64,
    now: u64,
) -> Result<(), DuisSetupError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DuisSetupError::Io { path, source }
    };
    let pki = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DuisSetupError::Pki { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    // A one-off issuer whose key is dropped here: the certificate is trusted by pinning, like
    // DCC Boxed's DSP XML-signing certificates, which chain to no SMKI CA either.
    let issuer = CertificateAuthority::new_root_with_serial(
        "DCC-ROUTER-XML-SIGNING-ISSUER",
        Signer::random(),
        now.saturating_sub(3600),
        now + 20 * 365 * 86_400,
        &[1],
    )
    .map_err(pki(cert))?;
    let signer = Signer::random();
    let org = issuer
        .issue_org(&OrgCertRequest::signing(
            dcc_eui,
            RemotePartyRole::DccXmlSigning,
            signer.public_key(),
            now.saturating_sub(3600),
            now + 20 * 365 * 86_400,
        ))
        .map_err(pki(cert))?;
    let key_pem = dcc_signing::pki::key_to_pem(&signer).map_err(pki(key))?;
    std::fs::write(key, key_pem).map_err(io(key))?;
    std::fs::write(cert, org.to_pem()).map_err(io(cert))?;
    Ok(())
}

/// The DUIS handler `dcc-router serve` installs on its HTTPS (and plain HTTP) ingress.
#[derive(Debug)]
pub struct DuisFront {
    router: Router,
    signer: Arc<XmlSigner>,
    metrics: Arc<Metrics>,
}

impl DuisFront {
    /// A front over `router`, signing its answers with `signer`.
    pub fn new(router: Router, signer: XmlSigner, metrics: Arc<Metrics>) -> Self {
        DuisFront {
            router,
            signer: Arc::new(signer),
            metrics,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A placeholder overwritten at once: an answer to a document whose RequestID could not be
/// read carries none.
const NO_ID: RequestId = RequestId {
    originator: Eui64([0; 8]),
    target: Eui64([0; 8]),
    counter: 0,
};

/// The signed answer to a request (`request_id` when it was read).
fn answer(
    signer: &XmlSigner,
    request_id: Option<RequestId>,
    srv: Option<Srv>,
    code: &str,
    body: ResponseBody,
    lane: Option<crate::Lane>,
) -> HttpAnswer {
    let mut r = match request_id {
        Some(id) if code == "I0" => DuisResponse::new(id, srv, code, now_ms()),
        Some(id) => DuisResponse::acknowledgement(id, srv, code, now_ms()),
        None => DuisResponse {
            request_id: None,
            ..DuisResponse::acknowledgement(NO_ID, srv, code, now_ms())
        },
    };
    r.body = body;
    match signer.sign_response(&r) {
        Ok(xml) => HttpAnswer {
            lane,
            ..HttpAnswer::xml(xml)
        },
        // Signing a document we built cannot fail short of a bug; say so rather than answer
        // unsigned.
        Err(_) => HttpAnswer {
            status: hyper::StatusCode::INTERNAL_SERVER_ERROR,
            body: Bytes::from_static(b"the router could not sign its answer\n"),
            lane,
        },
    }
}

impl DuisHandler for DuisFront {
    fn handle(
        &self,
        peer: Option<Arc<PeerIdentity>>,
        service: DuisService,
        body: Bytes,
    ) -> HandlerFuture {
        let signer = Arc::clone(&self.signer);
        let request = match DuisRequest::decode(&body) {
            Ok(r) => r,
            Err(e) => {
                let id = salvage_request_id(&body);
                let a = answer(
                    &signer,
                    id,
                    None,
                    e.response_code(),
                    ResponseBody::Plain,
                    None,
                );
                return Box::pin(async move { a });
            }
        };
        let (id, srv, cv) = (
            request.header.request_id,
            request.header.srv,
            request.header.command_variant.get(),
        );
        if !service.accepts(cv) {
            let a = answer(
                &signer,
                Some(id),
                Some(srv),
                "E13",
                ResponseBody::Plain,
                None,
            );
            return Box::pin(async move { a });
        }
        let sender = peer.map_or(Sender::Embedder, |p| Sender::User(p.user));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let metrics = Arc::clone(&self.metrics);
        // Signing the answer is CPU work: it runs in the callback, on the worker thread that
        // produced the answer (or here, for a refusal at admission).
        self.router
            .submit_duis(sender, request, move |r: Response| {
                metrics.observe(&r);
                let body = if r.code == ResponseCode::Success && r.detail == Some("pre-command") {
                    ResponseBody::PreCommand(placeholder_pre_command(id))
                } else {
                    ResponseBody::Plain
                };
                let _ = tx.send(answer(
                    &signer,
                    Some(id),
                    Some(srv),
                    r.code.code(),
                    body,
                    r.lane,
                ));
            });
        Box::pin(async move {
            rx.await.unwrap_or_else(|_| HttpAnswer {
                status: hyper::StatusCode::SERVICE_UNAVAILABLE,
                body: Bytes::from_static(b"the router stopped before answering\n"),
                lane: None,
            })
        })
    }
}

/// The placeholder GBCS Pre-Command of a transform: the Request ID's 24 bytes in hex (48
/// characters, also valid base64) — enough for a client to correlate and sign; the router has
/// no GBCS to transform.
fn placeholder_pre_command(id: RequestId) -> String {
    let mut raw = Vec::with_capacity(24);
    raw.extend_from_slice(&id.originator.0);
    raw.extend_from_slice(&id.target.0);
    raw.extend_from_slice(&id.counter.to_be_bytes());
    hex::encode_upper(raw)
}

/// The RequestID of a document that did not parse, when a plain scan finds one (so that the
/// refusal can still be correlated).
fn salvage_request_id(body: &[u8]) -> Option<RequestId> {
    let text = std::str::from_utf8(body.get(..body.len().min(4096))?).ok()?;
    let start = text.find("RequestID>")? + "RequestID>".len();
    let end = start + text[start..].find('<')?;
    dcc_signing::duis::parse_request_id(text[start..end].trim()).ok()
}
