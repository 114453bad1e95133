//! DUIS XML requests for the `https://` and `http://` targets, built from the DCC Reference
//! Test Data Set's request templates and signed as DUIS Users sign them (XML-DSig).
//!
//! Why shapes, not `XmlSigner::sign_document` per request: a template re-addressed for one
//! request differs from the next only in its RequestID. So each template the scenario needs
//! (per SRV, command variant and on-demand/future-dated) is prepared once into a *shape*: its
//! written form and its canonical form (inclusive C14N without the Signature, what the
//! Reference digests), each cut at the RequestID. A request is then two SHA-256 passes over
//! `canonical₀ ‖ id ‖ canonical₁` and the SignedInfo, one ECDSA signature with the
//! variable-time `FastSigner` (loadgen's signer for generated load, as for envelopes), and a
//! concatenation — no XML parse. The unit tests check that every shaped document verifies
//! exactly as `XmlSigner`'s would.
//!
//! | step | done |
//! |---|---|
//! | load templates | `TemplateSet::load_dir`: every `*.XML` under the directory, keyed by ServiceReferenceVariant |
//! | pick one per SRV | on-demand requests prefer templates without `ExecutionDateTime`, future-dated ones with; cancellations last; then by file name |
//! | re-address | RequestID ← a sentinel, CommandVariant ← the scenario's, `ExecutionDateTime` ← now + 1 day (future-dated; inserted as the body element's first child when the template has none) or removed (on demand) |
//! | shape | parse once ([`DuisDocument`]), drop the placeholder Signature, cut both forms at the sentinel |
//! | per request | RequestID from the draft (originator, device, fresh counter), digest, sign, concatenate |
//!
//! Critical requests (command variants 5–7) follow DUIS's flow: the request is prepared twice,
//! as CV 4 for the Transform service and as the Signed Pre-Command with the scenario's CV and
//! the same RequestID; the target sends both (the latency is both round trips).
//!
//! SRVs for which the directory has no template, and every SRV when the directory is not there
//! and the built-in set was chosen (`--duis-templates builtin`), use a minimal document of
//! loadgen's own: the header and a Body with one empty `sr:LoadgenRequest` element (the router
//! reads the header; the body is the device's business).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use dcc_signing::duis::{signature_element_with, DuisDocument, IssuerSerial};
use dcc_signing::{CommandVariant, ExecutionKind, FastSigner, RequestId, SignError, Signer, Srv};
use sha2::{Digest, Sha256};

use crate::population::World;
use crate::scenario::Attack;
use crate::workload::{Draft, SignWith};

/// Where the templates live in this project's layout, relative to the repository root.
pub const DEFAULT_TEMPLATES: &str = "../shared/vectors/dccboxed/templates";
/// The `--duis-templates` value choosing the minimal documents only.
pub const BUILTIN: &str = "builtin";

/// A RequestID no template contains: the place a request's own goes.
const SENTINEL: &str = "FF-FF-FF-FF-FF-FF-FF-FE:FF-FF-FF-FF-FF-FF-FF-FD:18446744073709551615";

/// Why the templates could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The directory is not there.
    #[error(
        "DUIS templates directory {0} not found: the https/http targets build requests from the \
         DCC Reference Test Data Set's templates (../shared/vectors/dccboxed/templates in this \
         project; see its README). Pass --duis-templates DIR, or --duis-templates builtin for \
         loadgen's minimal documents (header and an empty body element)"
    )]
    Missing(PathBuf),
    /// The directory or a file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// What.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No file of the directory is a DUIS request template.
    #[error("{0}: no DUIS request template (*.XML with a ServiceReferenceVariant) in it")]
    Empty(PathBuf),
    /// A template could not be shaped.
    #[error("template {name}: {why}")]
    Shape {
        /// The file name.
        name: String,
        /// Why.
        why: String,
    },
}

impl TemplateError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            TemplateError::Missing(_) => "templates-missing",
            TemplateError::Io { .. } => "templates-io",
            TemplateError::Empty(_) => "templates-empty",
            TemplateError::Shape { .. } => "template-shape",
        }
    }
}

#[derive(Debug, Clone)]
struct Template {
    name: String,
    text: String,
    future: bool,
    cancellation: bool,
}

/// DUIS request templates by SRV.
#[derive(Debug, Clone, Default)]
pub struct TemplateSet {
    by_srv: HashMap<Srv, Vec<Template>>,
    source: String,
}

impl TemplateSet {
    /// Every `*.XML` (any case) under `dir` that parses as a DUIS document with a
    /// ServiceReferenceVariant; others are skipped.
    pub fn load_dir(dir: &Path) -> Result<Self, TemplateError> {
        if !dir.is_dir() {
            return Err(TemplateError::Missing(dir.to_path_buf()));
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TemplateError::Io { path, source }
        };
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("xml")))
            .collect();
        names.sort();
        let mut set = TemplateSet {
            by_srv: HashMap::new(),
            source: dir.display().to_string(),
        };
        for path in names {
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let Ok(doc) = DuisDocument::parse(text.as_bytes()) else {
                continue;
            };
            let Some(srv) = doc
                .header_field("ServiceReferenceVariant")
                .and_then(|s| s.trim().parse::<Srv>().ok())
            else {
                continue;
            };
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            set.by_srv.entry(srv).or_default().push(Template {
                cancellation: name.to_ascii_uppercase().contains("CANCEL"),
                future: doc.execution_date_time().is_some(),
                name,
                text,
            });
        }
        if set.by_srv.is_empty() {
            return Err(TemplateError::Empty(dir.to_path_buf()));
        }
        Ok(set)
    }

    /// No templates: every SRV uses loadgen's minimal document.
    pub fn builtin() -> Self {
        TemplateSet {
            by_srv: HashMap::new(),
            source: BUILTIN.into(),
        }
    }

    /// `--duis-templates`: [`BUILTIN`] or a directory.
    pub fn from_arg(arg: &str) -> Result<Self, TemplateError> {
        if arg == BUILTIN {
            Ok(Self::builtin())
        } else {
            Self::load_dir(Path::new(arg))
        }
    }

    /// Where the templates came from (a directory, or `builtin`).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// How many templates were loaded.
    pub fn len(&self) -> usize {
        self.by_srv.values().map(Vec::len).sum()
    }

    /// Whether none were (the built-in set).
    pub fn is_empty(&self) -> bool {
        self.by_srv.is_empty()
    }

    /// The template for `srv`, by the preference in the module docs.
    fn pick(&self, srv: Srv, future: bool) -> Option<&Template> {
        self.by_srv
            .get(&srv)?
            .iter()
            .min_by_key(|t| (t.future != future, t.cancellation, t.name.as_str()))
    }
}

/// The minimal document for `srv` (the module docs).
fn minimal(srv: Srv) -> String {
    let (a, b) = srv.reference();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<sr:Request \
xmlns:sr=\"{}\" schemaVersion=\"5.4\">\n  <sr:Header>\n    \
<sr:RequestID>{SENTINEL}</sr:RequestID>\n    <sr:CommandVariant>1</sr:CommandVariant>\n    \
<sr:ServiceReference>{a}.{b}</sr:ServiceReference>\n    \
<sr:ServiceReferenceVariant>{srv}</sr:ServiceReferenceVariant>\n  </sr:Header>\n  <sr:Body>\n    \
<sr:LoadgenRequest/>\n  </sr:Body>\n</sr:Request>\n",
        dcc_signing::duis::SR_NS
    )
}

/// The text between `<sr:NAME>` and `</sr:NAME>` (first occurrence) replaced by `value`.
fn set_element(text: &str, name: &str, value: &str) -> Option<String> {
    let open = format!("<sr:{name}>");
    let close = format!("</sr:{name}>");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&close)?;
    Some(format!("{}{value}{}", &text[..start], &text[end..]))
}

/// Removes every `sr:ExecutionDateTime` element.
fn remove_execution(mut text: String) -> String {
    const OPEN: &str = "<sr:ExecutionDateTime>";
    const CLOSE: &str = "</sr:ExecutionDateTime>";
    while let Some(start) = text.find(OPEN) {
        let Some(len) = text[start..].find(CLOSE) else {
            break;
        };
        text.replace_range(start..start + len + CLOSE.len(), "");
    }
    text
}

/// Sets (or inserts, as the Body element's first child) `sr:ExecutionDateTime`.
fn set_execution(text: &str, at: &str) -> Option<String> {
    if text.contains("<sr:ExecutionDateTime>") {
        return set_element(text, "ExecutionDateTime", at);
    }
    let body = text.find("<sr:Body>")? + "<sr:Body>".len();
    let tag_start = body + text[body..].find('<')?;
    let tag_end = tag_start + text[tag_start..].find('>')?;
    let element = format!("<sr:ExecutionDateTime>{at}</sr:ExecutionDateTime>");
    if text[..tag_end].ends_with('/') {
        // `<sr:X/>` → `<sr:X><sr:ExecutionDateTime>…</sr:ExecutionDateTime></sr:X>`.
        let name = text[tag_start + 1..tag_end - 1]
            .split_whitespace()
            .next()?
            .to_owned();
        Some(format!(
            "{}>{element}</{name}>{}",
            &text[..tag_end - 1],
            &text[tag_end + 1..]
        ))
    } else {
        Some(format!(
            "{}{element}{}",
            &text[..tag_end + 1],
            &text[tag_end + 1..]
        ))
    }
}

/// A template prepared for signing many times (module docs).
#[derive(Debug, Clone)]
pub struct Shape {
    /// Written form: before the RequestID, between it and the Signature, after the Signature.
    written: [String; 3],
    /// Canonical form without the Signature: before and after the RequestID.
    canonical: [Vec<u8>; 2],
    /// The template it came from (or `builtin`).
    pub template: String,
}

impl Shape {
    /// Shapes `text` (a template) for `cv` and, when `execute_at` is given, future-dated at
    /// that `xs:dateTime`.
    pub fn new(
        name: &str,
        text: &str,
        cv: CommandVariant,
        execute_at: Option<&str>,
    ) -> Result<Shape, TemplateError> {
        let bad = |why: &str| TemplateError::Shape {
            name: name.to_owned(),
            why: why.to_owned(),
        };
        let t = set_element(text, "RequestID", SENTINEL).ok_or_else(|| bad("no <sr:RequestID>"))?;
        let t = set_element(&t, "CommandVariant", &cv.get().to_string())
            .ok_or_else(|| bad("no <sr:CommandVariant>"))?;
        let t = match execute_at {
            Some(at) => set_execution(&t, at).ok_or_else(|| bad("no Body element"))?,
            None => remove_execution(t),
        };
        let doc = DuisDocument::parse(t.as_bytes()).map_err(|e| bad(&e.to_string()))?;
        let t = t.strip_prefix('\u{feff}').unwrap_or(&t);
        let (cut_from, cut_to) = match doc.signature_span() {
            Some(span) => span,
            None => {
                let at = doc.root_end().ok_or_else(|| bad("no root end tag"))?;
                (at, at)
            }
        };
        let (before_sig, after_sig) = (&t[..cut_from], &t[cut_to..]);
        let split = |s: &[u8]| -> Option<(Vec<u8>, Vec<u8>)> {
            let at = s
                .windows(SENTINEL.len())
                .position(|w| w == SENTINEL.as_bytes())?;
            let rest = &s[at + SENTINEL.len()..];
            if rest
                .windows(SENTINEL.len())
                .any(|w| w == SENTINEL.as_bytes())
            {
                return None;
            }
            Some((s[..at].to_vec(), rest.to_vec()))
        };
        let (w0, w1) = split(before_sig.as_bytes())
            .ok_or_else(|| bad("the RequestID is not once before the Signature"))?;
        let (c0, c1) = split(doc.canonical())
            .ok_or_else(|| bad("the RequestID is not once in the canonical form"))?;
        let text = |b: Vec<u8>| String::from_utf8(b).map_err(|_| bad("not UTF-8"));
        Ok(Shape {
            written: [text(w0)?, text(w1)?, after_sig.to_owned()],
            canonical: [c0, c1],
            template: name.to_owned(),
        })
    }

    /// The signed document for `id`, signed by `sign` (raw `r ‖ s` of a SHA-256 prehash)
    /// under the certificate `signer`.
    pub fn render(
        &self,
        id: &RequestId,
        signer: &IssuerSerial,
        sign: impl FnOnce(&[u8; 32]) -> Result<[u8; 64], SignError>,
    ) -> Option<Vec<u8>> {
        let id = id.to_string();
        let mut h = Sha256::new();
        h.update(&self.canonical[0]);
        h.update(id.as_bytes());
        h.update(&self.canonical[1]);
        let digest: [u8; 32] = h.finalize().into();
        let signature = signature_element_with(signer, &digest, sign).ok()?;
        let [w0, w1, w2] = &self.written;
        let mut out =
            Vec::with_capacity(w0.len() + id.len() + w1.len() + signature.len() + w2.len());
        for part in [w0.as_str(), &id, w1, &signature, w2] {
            out.extend_from_slice(part.as_bytes());
        }
        Some(out)
    }
}

/// One request on the DUIS wire.
#[derive(Debug, Clone)]
pub struct DuisWire {
    /// For a Signed Pre-Command (CV 5–7): the same request as CV 4, sent to the Transform
    /// service first.
    pub transform: Option<Vec<u8>>,
    /// The request (or the Signed Pre-Command).
    pub document: Vec<u8>,
}

/// The shapes a scenario needs and the Users' XML-DSig identities.
#[derive(Debug)]
pub struct DuisEncoder {
    shapes: HashMap<(Srv, u8, bool), Shape>,
    impostor: IssuerSerial,
    /// Which template serves which SRV (`builtin` where the set has none), for the run's log.
    pub chosen: Vec<(Srv, String)>,
}

/// `xs:dateTime` one day from now (future-dated requests).
fn tomorrow() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    dcc_signing::duis::date_time_ms((now + 86_400) * 1000)
}

impl DuisEncoder {
    /// Shapes a template for every `(SRV, CV, execution)` in `wants` (CV 4 too for every
    /// critical CV 5–7).
    pub fn new(
        set: &TemplateSet,
        wants: impl IntoIterator<Item = (Srv, CommandVariant, ExecutionKind)>,
    ) -> Result<Self, TemplateError> {
        let at = tomorrow();
        let mut shapes = HashMap::new();
        let mut chosen: Vec<(Srv, String)> = Vec::new();
        for (srv, cv, execution) in wants {
            let future = execution != ExecutionKind::OnDemand;
            let mut cvs = vec![cv];
            if (5..=7).contains(&cv.get()) {
                cvs.extend(CommandVariant::new(4));
            }
            for cv in cvs {
                if shapes.contains_key(&(srv, cv.get(), future)) {
                    continue;
                }
                let (name, text) = match set.pick(srv, future) {
                    Some(t) => (t.name.clone(), t.text.clone()),
                    None => (BUILTIN.to_owned(), minimal(srv)),
                };
                let shape = Shape::new(&name, &text, cv, future.then_some(at.as_str()))?;
                if !chosen.iter().any(|(s, n)| *s == srv && *n == name) {
                    chosen.push((srv, name));
                }
                shapes.insert((srv, cv.get(), future), shape);
            }
        }
        Ok(DuisEncoder {
            shapes,
            impostor: IssuerSerial {
                issuer: String::from_utf8_lossy(crate::population::DEMO_ISSUER).into_owned(),
                serial: vec![0x7E, 0xAD, 0xBE, 0xEF, 0x01],
            },
            chosen,
        })
    }

    /// The DUIS form of `draft` (its deliberate defect applied), `None` when it cannot be
    /// made (a User without a certificate, a shape not prepared).
    pub fn encode(&self, world: &World, draft: &Draft, index: u64) -> Option<DuisWire> {
        let h = &draft.header;
        let future = h.execution != ExecutionKind::OnDemand;
        let (signer, id): (&Signer, &IssuerSerial) = match draft.sign_with {
            SignWith::User(u) => {
                let u = world.users.get(u)?;
                (&u.signer, u.xml_id.as_ref()?)
            }
            SignWith::UserKey(u, k) => {
                let u = world.users.get(u)?;
                (&u.more_keys.get(k)?.0, u.more_xml_ids.get(k)?)
            }
            SignWith::Impostor => (&world.impostor.0, &self.impostor),
        };
        let fast = FastSigner::from_signer(signer)?;
        let attack = draft.attack;
        let sign = |d: &[u8; 32]| -> Result<[u8; 64], SignError> {
            match attack {
                Some(Attack::ForgedSignature) => Ok(forged(index)),
                Some(Attack::BadSignature) => fast.sign_prehash(d).map(|mut s| {
                    // Flip one bit of `s`: still well formed, does not verify.
                    s[63] ^= 0x01;
                    s
                }),
                _ => fast.sign_prehash(d),
            }
        };
        let shape = |cv: u8| self.shapes.get(&(h.srv, cv, future));
        let cv = h.command_variant.get();
        let transform = if (5..=7).contains(&cv) {
            Some(shape(4)?.render(&h.request_id, id, sign)?)
        } else {
            None
        };
        Some(DuisWire {
            transform,
            document: shape(cv)?.render(&h.request_id, id, sign)?,
        })
    }
}

/// 64 index-dependent bytes in `0x01..=0x7F` (r and s in range: a full verification refuses
/// them), as the envelope form's forged signature.
fn forged(index: u64) -> [u8; 64] {
    let mut x = index.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = [0u8; 64];
    for b in &mut out {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = (x as u8 & 0x7E) | 1;
    }
    out
}

/// The command variant written in a document this module made (`<sr:CommandVariant>N<`).
pub fn command_variant_of(xml: &[u8]) -> Option<u8> {
    const TAG: &[u8] = b"<sr:CommandVariant>";
    let at = xml.windows(TAG.len()).position(|w| w == TAG)? + TAG.len();
    let d = *xml.get(at)?;
    (d.is_ascii_digit() && xml.get(at + 1) == Some(&b'<')).then_some(d - b'0')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use dcc_signing::duis::matrix::srv_info;
    use dcc_signing::duis::{DuisRequest, XmlKeyring, XmlSigner};
    use dcc_signing::pki::demo::DemoPki;
    use dcc_signing::verify::P256Verifier;
    use dcc_signing::Eui64;

    fn templates() -> Option<TemplateSet> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(DEFAULT_TEMPLATES);
        match TemplateSet::load_dir(&dir) {
            Ok(t) => Some(t),
            Err(e) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "CI needs the vectors: {e}"
                );
                eprintln!("skipping the template half: {e}");
                None
            }
        }
    }

    fn id(counter: u64) -> RequestId {
        RequestId {
            originator: Eui64::from_u64(0x90B3_D51F_3000_0001),
            target: Eui64::from_u64(0x00DB_0000_0000_0007),
            counter,
        }
    }

    #[test]
    fn shaped_documents_verify_as_xml_signer_documents_do() {
        let pki = DemoPki::generate(dcc_signing::pki::now_unix()).unwrap();
        let u = pki.user("supplier-a").unwrap();
        let xml_id = IssuerSerial::of(&u.cert);
        let fast = FastSigner::from_signer(&u.signer).unwrap();
        let mut ring = XmlKeyring::new();
        ring.insert(u.cert.clone(), &P256Verifier);
        let mut sets = vec![TemplateSet::builtin()];
        sets.extend(templates());
        let srvs: Vec<Srv> = ["2.2", "4.6.1", "1.1.1", "8.2", "7.3", "3.1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        for set in &sets {
            for &srv in &srvs {
                for (cv, exec) in [
                    (1u8, ExecutionKind::OnDemand),
                    (4, ExecutionKind::OnDemand),
                    (5, ExecutionKind::OnDemand),
                    (1, ExecutionKind::FutureDated),
                    (8, ExecutionKind::OnDemand),
                ] {
                    let cv = CommandVariant::new(cv).unwrap();
                    if !srv_info(srv).unwrap().allows(cv) {
                        continue;
                    }
                    let enc = DuisEncoder::new(set, [(srv, cv, exec)]).unwrap();
                    let shape = &enc.shapes[&(srv, cv.get(), exec != ExecutionKind::OnDemand)];
                    for counter in [1u64, 12_345_678_901] {
                        let doc = shape
                            .render(&id(counter), &xml_id, |d| fast.sign_prehash(d))
                            .unwrap();
                        let what = format!("{} {srv} CV {cv:?} {exec:?}", shape.template);
                        let v = ring
                            .verify(&doc, &dcc_signing::duis::Limits::default())
                            .unwrap_or_else(|e| panic!("{what}: {e}"));
                        let req = DuisRequest::decode(&doc).unwrap();
                        assert_eq!(req.header.request_id, id(counter), "{what}");
                        assert_eq!(req.header.srv, srv, "{what}");
                        assert_eq!(req.header.command_variant, cv, "{what}");
                        assert_eq!(
                            req.header.execution_date_time.is_some(),
                            exec != ExecutionKind::OnDemand,
                            "{what}"
                        );
                        assert_eq!(command_variant_of(&doc), Some(cv.get()), "{what}");
                        // The same bytes XmlSigner signs (same document, same RFC 6979 nonce).
                        let again = XmlSigner::new(u.signer.clone(), &u.cert)
                            .unwrap()
                            .sign_document(&doc)
                            .unwrap();
                        assert_eq!(again, doc, "{what}");
                        drop(v);
                    }
                }
            }
        }
    }

    #[test]
    fn a_missing_directory_says_what_to_do() {
        let e = TemplateSet::from_arg("/nonexistent/templates").unwrap_err();
        assert_eq!(e.code(), "templates-missing");
        let msg = e.to_string();
        assert!(msg.contains("--duis-templates builtin"), "{msg}");
        assert!(TemplateSet::from_arg(BUILTIN).unwrap().is_empty());
    }

    #[test]
    fn execution_date_time_is_set_inserted_or_removed() {
        let t = "<sr:Body><sr:X/></sr:Body>";
        assert_eq!(
            set_execution(t, "D").unwrap(),
            "<sr:Body><sr:X><sr:ExecutionDateTime>D</sr:ExecutionDateTime></sr:X></sr:Body>"
        );
        let t = "<sr:Body>\n <sr:X a=\"1\">\n<sr:Y/></sr:X></sr:Body>";
        assert_eq!(
            set_execution(t, "D").unwrap(),
            "<sr:Body>\n <sr:X a=\"1\"><sr:ExecutionDateTime>D</sr:ExecutionDateTime>\n<sr:Y/></sr:X></sr:Body>"
        );
        let t = "<sr:X><sr:ExecutionDateTime>old</sr:ExecutionDateTime></sr:X>";
        assert_eq!(
            set_execution(t, "D").unwrap(),
            "<sr:X><sr:ExecutionDateTime>D</sr:ExecutionDateTime></sr:X>"
        );
        assert_eq!(remove_execution(t.to_owned()), "<sr:X></sr:X>");
    }
}
