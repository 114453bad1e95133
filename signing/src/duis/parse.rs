//! One streaming pass over a DUIS document: well-formedness and hostile-input checks, the
//! header fields, the enveloped `ds:Signature`'s parts, and — in the same pass — the two
//! canonical forms XML-DSig needs (the document without its Signature, inclusive C14N; the
//! `SignedInfo`, exclusive C14N).
//!
//! Why one pass and no DOM: the router decodes every request on its I/O threads; what costs
//! is hashing and ECDSA, which it runs on worker threads from the bytes this pass produces
//! ([`DuisDocument::canonical`], [`super::XmlSignature::signed_info`]).
//!
//! Hostile input: a DOCTYPE is refused before anything is expanded (no entity, internal or
//! external, is ever resolved: XXE and billion-laughs both end there); only the five predefined
//! entities and character references are read; size, depth, attributes per element and
//! namespace declarations are bounded ([`Limits`]); every failure is a [`DuisError`], never a
//! panic.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::c14n::{Attr, C14nMode, NsScope, Renderer, XML_NS};
use super::text::{attr_value, check_chars, normalize_eol, resolve_ref};
use super::{DuisError, DSIG_NS, SR_NS};

/// Bounds on what one document may make the parser do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest document, bytes (default 1 MiB; the largest DUIS template is about 4 KiB).
    pub max_len: usize,
    /// Deepest element nesting (default 64; DUIS documents nest about 10 deep).
    pub max_depth: usize,
    /// Most attributes (namespace declarations included) on one element (default 64).
    pub max_attributes: usize,
    /// Most namespace declarations in scope at once (default 256).
    pub max_namespaces: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_len: 1 << 20,
            max_depth: 64,
            max_attributes: 64,
            max_namespaces: 256,
        }
    }
}

/// The parts of a `ds:Signature` as read, before they are checked: a placeholder signature (as
/// in the DUIS templates) still parses, so that a signer can replace it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawSignature {
    /// `SignedInfo`, exclusive C14N.
    pub(crate) signed_info: Vec<u8>,
    pub(crate) signed_info_seen: bool,
    pub(crate) references: usize,
    pub(crate) transforms: usize,
    pub(crate) digest_value: Option<String>,
    pub(crate) signature_value: Option<String>,
    pub(crate) issuer_name: Option<String>,
    pub(crate) serial_number: Option<String>,
    /// The first thing DUIS does not use (another algorithm, transform, element).
    pub(crate) unsupported: Option<&'static str>,
}

impl RawSignature {
    fn unsupported(&mut self, what: &'static str) {
        self.unsupported.get_or_insert(what);
    }
}

/// A DUIS document read in one pass: root, header fields, what the router needs of the body,
/// the canonical form the Reference digests, and the signature's parts.
#[derive(Debug, Clone)]
pub struct DuisDocument {
    pub(crate) root_ns: String,
    pub(crate) root_local: String,
    pub(crate) schema_version: Option<String>,
    /// Header children in document order: (local name, text).
    pub(crate) header: Vec<(String, String)>,
    pub(crate) header_seen: bool,
    pub(crate) body_seen: bool,
    pub(crate) body_element: Option<String>,
    /// `Body/ResponseMessage/ServiceReference` and `…/ServiceReferenceVariant` (responses).
    pub(crate) body_service_reference: Option<String>,
    pub(crate) body_srv: Option<String>,
    pub(crate) execution_date_time: Option<String>,
    pub(crate) canonical: Vec<u8>,
    pub(crate) signature: Option<RawSignature>,
    /// Byte range of the enveloped `ds:Signature` in the (BOM-stripped) input.
    pub(crate) signature_span: Option<(usize, usize)>,
    /// Byte offset of the root's end tag.
    pub(crate) root_end: Option<usize>,
}

impl DuisDocument {
    /// Reads a document under the default [`Limits`].
    pub fn parse(input: &[u8]) -> Result<Self, DuisError> {
        Self::parse_with(input, &Limits::default())
    }

    /// Reads a document under `limits`.
    pub fn parse_with(input: &[u8], limits: &Limits) -> Result<Self, DuisError> {
        let s = prepare(input, limits)?;
        walk(s, limits, C14nMode::Inclusive, true)
    }

    /// The root element's local name (`Request`, `Response`, …).
    pub fn root(&self) -> &str {
        &self.root_local
    }

    /// The root element's namespace URI.
    pub fn root_namespace(&self) -> &str {
        &self.root_ns
    }

    /// The root's `schemaVersion` attribute.
    pub fn schema_version(&self) -> Option<&str> {
        self.schema_version.as_deref()
    }

    /// The Header's children in document order: (local name, text).
    pub fn header_fields(&self) -> &[(String, String)] {
        &self.header
    }

    /// The text of the first Header child with this local name.
    pub fn header_field(&self, local: &str) -> Option<&str> {
        self.header
            .iter()
            .find(|(n, _)| n == local)
            .map(|(_, v)| v.as_str())
    }

    /// The Body's first child element (`UpdateFirmware`, `ResponseMessage`, …).
    pub fn body_element(&self) -> Option<&str> {
        self.body_element.as_deref()
    }

    /// The first `ExecutionDateTime` in the Body, if any (future-dated requests).
    pub fn execution_date_time(&self) -> Option<&str> {
        self.execution_date_time.as_deref()
    }

    /// The inclusive Canonical XML 1.0 of the document without its enveloped Signature: the
    /// bytes the Reference's `DigestValue` is the SHA-256 of.
    pub fn canonical(&self) -> &[u8] {
        &self.canonical
    }

    /// The byte range of the enveloped `ds:Signature` in the input (after a byte-order mark,
    /// if any, is stripped), when there is one: where a signer puts the new one.
    pub fn signature_span(&self) -> Option<(usize, usize)> {
        self.signature_span
    }

    /// The byte offset of the root's end tag in the input (after a byte-order mark is
    /// stripped): where a signer appends a Signature when there is none.
    pub fn root_end(&self) -> Option<usize> {
        self.root_end
    }

    /// Whether the document has a `ds:Signature` under its root.
    pub fn has_signature(&self) -> bool {
        self.signature.is_some()
    }
}

/// Canonicalises a whole document (Canonical XML 1.0 or Exclusive C14N, without comments),
/// without removing any Signature: the form independent implementations produce for the
/// document node, used by the differential tests.
pub fn canonicalize(input: &[u8], mode: C14nMode) -> Result<Vec<u8>, DuisError> {
    let limits = Limits::default();
    let s = prepare(input, &limits)?;
    walk(s, &limits, mode, false).map(|d| d.canonical)
}

/// Bounds the size, strips a UTF-8 byte-order mark, checks UTF-8 and XML characters.
pub(crate) fn prepare<'a>(input: &'a [u8], limits: &Limits) -> Result<&'a str, DuisError> {
    if input.len() > limits.max_len {
        return Err(DuisError::TooLarge {
            len: input.len(),
            max: limits.max_len,
        });
    }
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let s = std::str::from_utf8(input).map_err(|e| DuisError::Xml {
        pos: e.valid_up_to() as u64,
        msg: "not UTF-8".into(),
    })?;
    check_chars(s)?;
    Ok(s)
}

/// Checks an XML declaration's content (`xml version="1.0" encoding="UTF-8" standalone="no"`):
/// version 1.0, then optionally encoding (UTF-8 only) and standalone, nothing else.
fn check_decl(content: &str) -> Result<(), &'static str> {
    let mut rest = content.strip_prefix("xml").ok_or("bad XML declaration")?;
    let mut seen = 0;
    loop {
        let trimmed = rest.trim_start_matches([' ', '\t', '\n', '\r']);
        if trimmed.is_empty() {
            break;
        }
        if trimmed.len() == rest.len() {
            return Err("bad XML declaration");
        }
        let (name, after) = trimmed.split_once('=').ok_or("bad XML declaration")?;
        let after = after.trim_start_matches([' ', '\t', '\n', '\r']);
        let q = after
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
            .ok_or("bad XML declaration")?;
        let body = &after[1..];
        let end = body.find(q).ok_or("bad XML declaration")?;
        let value = &body[..end];
        rest = &body[end + 1..];
        let name = name.trim_end_matches([' ', '\t', '\n', '\r']);
        let (order, ok) = match name {
            "version" => (1, value == "1.0"),
            "encoding" => (2, value.eq_ignore_ascii_case("UTF-8")),
            "standalone" => (3, value == "yes" || value == "no"),
            _ => return Err("unknown pseudo-attribute in the XML declaration"),
        };
        if !ok {
            return Err("XML declaration: only version 1.0 and UTF-8 are accepted");
        }
        if order <= seen || (seen == 0 && order != 1) {
            return Err("XML declaration out of order");
        }
        seen = order;
    }
    if seen == 0 {
        return Err("XML declaration without version");
    }
    Ok(())
}

/// Where an open element sits, as far as the extraction cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Root,
    Header,
    Body,
    ResponseMessage,
    /// Anything else the extraction does not look into.
    Other,
    /// A text-only field being captured.
    Capture(Field),
    Signature,
    SignedInfo,
    Reference,
    Transforms,
    KeyInfo,
    X509Data,
    X509IssuerSerial,
    /// A signature element that must have no element children.
    SigLeaf,
    /// Inside KeyInfo, something DUIS does not use: ignored (it is not signed).
    SigIgnored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Header(usize),
    BodyServiceReference,
    BodySrv,
    ExecutionDateTime,
    DigestValue,
    SignatureValue,
    IssuerName,
    SerialNumber,
}

struct Walker<'s> {
    limits: &'s Limits,
    doc_mode_skip_signature: bool,
    scope: NsScope,
    doc: Renderer,
    si: Option<Renderer>,
    stack: Vec<Ctx>,
    /// Depth (stack length) at which the enveloped Signature opened.
    sig_depth: Option<usize>,
    /// Depth at which SignedInfo opened.
    si_depth: Option<usize>,
    capture: String,
    out: DuisDocument,
    root_done: bool,
    events: usize,
}

fn xml_err(reader: &Reader<&[u8]>, e: impl std::fmt::Display) -> DuisError {
    DuisError::Xml {
        pos: reader.error_position(),
        msg: e.to_string(),
    }
}

/// Whether `s` is an XML Name without a colon (NCName), ASCII rules plus any non-ASCII
/// character: a letter or `_` first, then letters, digits, `_`, `-`, `.`.
fn is_ncname(s: &str) -> bool {
    let mut b = s.bytes();
    let name_char =
        |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.') || c >= 0x80;
    match b.next() {
        Some(c) if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => b.all(name_char),
        _ => false,
    }
}

/// Whether a qualified name as written is `NCName` or `NCName:NCName`.
fn is_qname(q: &str) -> bool {
    match q.split_once(':') {
        Some((p, l)) => is_ncname(p) && is_ncname(l),
        None => is_ncname(q),
    }
}

fn split_qname(q: &str) -> (&str, &str) {
    match q.split_once(':') {
        Some((p, l)) => (p, l),
        None => ("", q),
    }
}

fn walk(
    s: &str,
    limits: &Limits,
    mode: C14nMode,
    skip_signature: bool,
) -> Result<DuisDocument, DuisError> {
    let mut reader = Reader::from_str(s);
    {
        let c = reader.config_mut();
        c.check_end_names = true;
        c.expand_empty_elements = false;
        c.check_comments = true;
        c.trim_text(false);
    }
    let mut w = Walker {
        limits,
        doc_mode_skip_signature: skip_signature,
        scope: NsScope::default(),
        doc: Renderer::new(mode, s.len()),
        si: None,
        stack: Vec::with_capacity(16),
        sig_depth: None,
        si_depth: None,
        capture: String::new(),
        out: DuisDocument {
            root_ns: String::new(),
            root_local: String::new(),
            schema_version: None,
            header: Vec::new(),
            header_seen: false,
            body_seen: false,
            body_element: None,
            body_service_reference: None,
            body_srv: None,
            execution_date_time: None,
            canonical: Vec::new(),
            signature: None,
            signature_span: None,
            root_end: None,
        },
        root_done: false,
        events: 0,
    };
    let mut ref_buf = [0u8; 4];
    loop {
        let before = reader.buffer_position() as usize;
        let ev = reader.read_event().map_err(|e| xml_err(&reader, e))?;
        w.events += 1;
        match ev {
            Event::Decl(d) => {
                if w.events != 1 || before != 0 {
                    return Err(xml_err(&reader, "XML declaration not at the start"));
                }
                let content = std::str::from_utf8(&d).map_err(|e| xml_err(&reader, e))?;
                check_decl(content).map_err(|m| xml_err(&reader, m))?;
            }
            Event::DocType(_) => return Err(DuisError::Doctype),
            Event::PI(p) => {
                let content = std::str::from_utf8(&p).map_err(|e| xml_err(&reader, e))?;
                // By bytes: the fourth byte may sit inside a multi-byte character (found by
                // the duis_parse fuzz target).
                let target = content
                    .split(|c: char| c.is_ascii_whitespace())
                    .next()
                    .unwrap_or_default();
                if !is_ncname(target) {
                    return Err(xml_err(&reader, "bad processing instruction target"));
                }
                let b = content.as_bytes();
                if b.get(..3).is_some_and(|p| p.eq_ignore_ascii_case(b"xml"))
                    && b.get(3).is_none_or(|c| c.is_ascii_whitespace())
                {
                    return Err(xml_err(&reader, "misplaced XML declaration"));
                }
                let depth = w.stack.len();
                if w.sig_depth.is_none() || !w.doc_mode_skip_signature {
                    w.doc.pi(
                        content,
                        depth == 0 && !w.root_done,
                        depth == 0 && w.root_done,
                    );
                }
                if let Some(si) = w.si.as_mut() {
                    si.pi(content, false, false);
                }
            }
            Event::Comment(_) => {}
            Event::Start(e) => {
                w.start(&reader, &e, before)?;
            }
            Event::Empty(e) => {
                w.start(&reader, &e, before)?;
                let qname = std::str::from_utf8(e.name().into_inner())
                    .map_err(|e| xml_err(&reader, e))?
                    .to_owned();
                w.end(&qname, before, reader.buffer_position() as usize);
            }
            Event::End(e) => {
                let qname =
                    std::str::from_utf8(e.name().into_inner()).map_err(|e| xml_err(&reader, e))?;
                w.end(qname, before, reader.buffer_position() as usize);
            }
            Event::Text(t) => {
                let raw = std::str::from_utf8(&t).map_err(|e| xml_err(&reader, e))?;
                if w.stack.is_empty() {
                    if !raw.bytes().all(|b| b.is_ascii_whitespace()) {
                        return Err(xml_err(&reader, "text outside the root element"));
                    }
                    continue;
                }
                w.text(&normalize_eol(raw))?;
            }
            Event::CData(t) => {
                if w.stack.is_empty() {
                    return Err(xml_err(&reader, "CDATA outside the root element"));
                }
                let raw = std::str::from_utf8(&t).map_err(|e| xml_err(&reader, e))?;
                w.text(&normalize_eol(raw))?;
            }
            Event::GeneralRef(r) => {
                if w.stack.is_empty() {
                    return Err(xml_err(&reader, "reference outside the root element"));
                }
                let name = std::str::from_utf8(&r).map_err(|e| xml_err(&reader, e))?;
                let c = resolve_ref(name).map_err(|e| match e {
                    DuisError::Xml { msg, .. } => DuisError::Xml {
                        pos: before as u64,
                        msg,
                    },
                    other => other,
                })?;
                w.text(c.encode_utf8(&mut ref_buf))?;
            }
            Event::Eof => break,
        }
    }
    if !w.stack.is_empty() {
        return Err(DuisError::Xml {
            pos: s.len() as u64,
            msg: "unclosed elements at the end of the document".into(),
        });
    }
    if !w.root_done {
        return Err(DuisError::Xml {
            pos: s.len() as u64,
            msg: "no root element".into(),
        });
    }
    let mut out = w.out;
    out.canonical = w.doc.out;
    Ok(out)
}

impl Walker<'_> {
    fn start(
        &mut self,
        reader: &Reader<&[u8]>,
        e: &BytesStart<'_>,
        before: usize,
    ) -> Result<(), DuisError> {
        let depth = self.stack.len();
        if depth >= self.limits.max_depth {
            return Err(DuisError::TooDeep {
                max: self.limits.max_depth,
            });
        }
        if depth == 0 && self.root_done {
            return Err(xml_err(reader, "a second root element"));
        }
        let qname = std::str::from_utf8(e.name().into_inner()).map_err(|e| xml_err(reader, e))?;
        let (prefix, local) = split_qname(qname);
        if !is_qname(qname) {
            return Err(xml_err(reader, format!("bad element name {qname:?}")));
        }

        // The scope moves out while attributes borrow from it (restored below).
        let mut scope = std::mem::take(&mut self.scope);
        // Attributes: namespace declarations into the scope, the others kept to render.
        scope.push_frame();
        let mut raw_attrs: Vec<(&str, &str)> = Vec::new();
        let mut n = 0usize;
        for a in e.attributes() {
            let a = a.map_err(|e| xml_err(reader, e))?;
            n += 1;
            if n > self.limits.max_attributes {
                return Err(DuisError::invalid(
                    "element",
                    qname,
                    "more attributes than the limit allows",
                ));
            }
            let key = std::str::from_utf8(a.key.into_inner()).map_err(|e| xml_err(reader, e))?;
            let raw = match &a.value {
                Cow::Borrowed(b) => std::str::from_utf8(b).map_err(|e| xml_err(reader, e))?,
                Cow::Owned(_) => return Err(xml_err(reader, "attribute value not borrowed")),
            };
            if key == "xmlns" || key.starts_with("xmlns:") {
                let value = attr_value(raw)?;
                let p = key.strip_prefix("xmlns:").unwrap_or("");
                if key.len() > 5 && !is_ncname(p) {
                    return Err(xml_err(
                        reader,
                        format!("bad namespace declaration {key:?}"),
                    ));
                }
                if p == "xmlns"
                    || (p == "xml") != (value == XML_NS)
                    || (!p.is_empty() && value.is_empty())
                    || value == "http://www.w3.org/2000/xmlns/"
                {
                    return Err(xml_err(
                        reader,
                        format!("namespace declaration {key:?} not allowed"),
                    ));
                }
                if p != "xml" {
                    scope.bind(p, &value);
                }
            } else {
                // The raw value borrows from the input: sound for the element's lifetime.
                raw_attrs.push((key, raw));
            }
        }
        if scope.total() > self.limits.max_namespaces {
            return Err(DuisError::invalid(
                "element",
                qname,
                "more namespace declarations in scope than the limit allows",
            ));
        }
        let uri = scope
            .lookup(prefix)
            .ok_or_else(|| xml_err(reader, format!("unbound prefix in {qname:?}")))?
            .to_owned();
        let mut attrs: Vec<Attr<'_>> = Vec::with_capacity(raw_attrs.len());
        for (key, raw) in &raw_attrs {
            let (p, l) = split_qname(key);
            if !is_qname(key) {
                return Err(xml_err(reader, format!("bad attribute name {key:?}")));
            }
            let u = if p.is_empty() {
                ""
            } else {
                scope
                    .lookup(p)
                    .ok_or_else(|| xml_err(reader, format!("unbound prefix in {key:?}")))?
            };
            if attrs.iter().any(|a: &Attr<'_>| a.uri == u && a.local == l) {
                return Err(xml_err(reader, format!("attribute {key:?} repeated")));
            }
            attrs.push(Attr {
                qname: key,
                prefix: p,
                local: l,
                uri: u,
                value: attr_value(raw)?,
            });
        }

        let ctx = self.classify(&uri, local, &attrs, before)?;

        // Render.
        let in_sig = self.sig_depth.is_some();
        if !(in_sig && self.doc_mode_skip_signature) {
            self.doc.start(qname, prefix, &scope, &attrs);
        }
        if ctx == Ctx::SignedInfo && self.si_depth.is_none() && self.si.is_none() {
            self.si_depth = Some(depth + 1);
            self.si = Some(Renderer::new(C14nMode::Exclusive, 1024));
        }
        if let Some(si) = self.si.as_mut() {
            si.start(qname, prefix, &scope, &attrs);
        }
        if depth == 0 {
            self.out.root_ns = uri;
            self.out.root_local = local.to_owned();
            self.out.schema_version = attrs
                .iter()
                .find(|a| a.uri.is_empty() && a.local == "schemaVersion")
                .map(|a| a.value.clone().into_owned());
        }
        drop(attrs);
        self.scope = scope;
        self.stack.push(ctx);
        Ok(())
    }

    /// Decides the new element's context from its parent's, checking the signature's shape.
    fn classify(
        &mut self,
        uri: &str,
        local: &str,
        attrs: &[Attr<'_>],
        before: usize,
    ) -> Result<Ctx, DuisError> {
        let parent = self.stack.last().copied();
        let depth = self.stack.len();
        let ds = uri == DSIG_NS;
        let sr = uri == SR_NS;
        let algorithm = || {
            attrs
                .iter()
                .find(|a| a.uri.is_empty() && a.local == "Algorithm")
                .map(|a| a.value.as_ref())
        };
        let ctx = match parent {
            None => Ctx::Root,
            Some(Ctx::Capture(f)) => {
                return Err(DuisError::invalid(
                    field_name(f),
                    local,
                    "must be text only",
                ));
            }
            Some(Ctx::Root) => {
                if ds && local == "Signature" && self.doc_mode_skip_signature {
                    if self.out.signature.is_some() {
                        return Err(DuisError::Duplicate("ds:Signature"));
                    }
                    self.out.signature = Some(RawSignature::default());
                    self.sig_depth = Some(depth + 1);
                    self.out.signature_span = Some((before, before));
                    Ctx::Signature
                } else if sr && local == "Header" && !self.out.header_seen {
                    self.out.header_seen = true;
                    Ctx::Header
                } else if sr && local == "Body" && !self.out.body_seen {
                    self.out.body_seen = true;
                    Ctx::Body
                } else {
                    Ctx::Other
                }
            }
            Some(Ctx::Header) => {
                if !sr {
                    return Err(DuisError::invalid(
                        "Header",
                        local,
                        "element outside the DUIS namespace",
                    ));
                }
                self.out.header.push((local.to_owned(), String::new()));
                self.capture.clear();
                Ctx::Capture(Field::Header(self.out.header.len() - 1))
            }
            Some(Ctx::Body) => {
                if self.out.body_element.is_none() {
                    self.out.body_element = Some(local.to_owned());
                }
                if sr && local == "ResponseMessage" {
                    Ctx::ResponseMessage
                } else {
                    self.other_in_body(sr, local)
                }
            }
            Some(Ctx::ResponseMessage) => {
                if sr && local == "ServiceReference" && self.out.body_service_reference.is_none() {
                    self.capture.clear();
                    Ctx::Capture(Field::BodyServiceReference)
                } else if sr && local == "ServiceReferenceVariant" && self.out.body_srv.is_none() {
                    self.capture.clear();
                    Ctx::Capture(Field::BodySrv)
                } else {
                    self.other_in_body(sr, local)
                }
            }
            Some(Ctx::Other) => {
                if self.in_body() {
                    self.other_in_body(sr, local)
                } else {
                    Ctx::Other
                }
            }
            Some(Ctx::Signature) => {
                let raw = self.raw_sig();
                match (ds, local) {
                    (true, "SignedInfo") if !raw.signed_info_seen => {
                        raw.signed_info_seen = true;
                        Ctx::SignedInfo
                    }
                    (true, "SignatureValue") if raw.signature_value.is_none() => {
                        self.capture.clear();
                        Ctx::Capture(Field::SignatureValue)
                    }
                    (true, "KeyInfo") => Ctx::KeyInfo,
                    _ => {
                        raw.unsupported("an element in ds:Signature other than SignedInfo, SignatureValue, KeyInfo");
                        Ctx::SigIgnored
                    }
                }
            }
            Some(Ctx::SignedInfo) => {
                let alg = algorithm().map(str::to_owned);
                let raw = self.raw_sig();
                match (ds, local) {
                    (true, "CanonicalizationMethod") => {
                        if alg.as_deref() != Some(super::EXC_C14N) {
                            raw.unsupported("CanonicalizationMethod other than exclusive C14N");
                        }
                        Ctx::SigLeaf
                    }
                    (true, "SignatureMethod") => {
                        if alg.as_deref() != Some(super::ECDSA_SHA256) {
                            raw.unsupported("SignatureMethod other than ECDSA-SHA256");
                        }
                        Ctx::SigLeaf
                    }
                    (true, "Reference") => {
                        raw.references += 1;
                        let uri_attr = attrs.iter().find(|a| a.uri.is_empty() && a.local == "URI");
                        if raw.references > 1 {
                            raw.unsupported("more than one Reference");
                        } else if uri_attr.map(|a| a.value.as_ref()) != Some("") {
                            raw.unsupported(
                                "a Reference whose URI is not \"\" (the whole document)",
                            );
                        }
                        Ctx::Reference
                    }
                    _ => {
                        raw.unsupported("an unexpected element in SignedInfo");
                        Ctx::SigIgnored
                    }
                }
            }
            Some(Ctx::Reference) => {
                let alg = algorithm().map(str::to_owned);
                let raw = self.raw_sig();
                match (ds, local) {
                    (true, "Transforms") => Ctx::Transforms,
                    (true, "DigestMethod") => {
                        if alg.as_deref() != Some(super::SHA256) {
                            raw.unsupported("DigestMethod other than SHA-256");
                        }
                        Ctx::SigLeaf
                    }
                    (true, "DigestValue") if raw.digest_value.is_none() => {
                        self.capture.clear();
                        Ctx::Capture(Field::DigestValue)
                    }
                    _ => {
                        raw.unsupported("an unexpected element in Reference");
                        Ctx::SigIgnored
                    }
                }
            }
            Some(Ctx::Transforms) => {
                let alg = algorithm().map(str::to_owned);
                let raw = self.raw_sig();
                raw.transforms += 1;
                if !(ds && local == "Transform") {
                    raw.unsupported("an unexpected element in Transforms");
                } else if alg.as_deref() != Some(super::ENVELOPED) || raw.transforms > 1 {
                    raw.unsupported(
                        "a transform other than the single enveloped-signature transform",
                    );
                }
                Ctx::SigLeaf
            }
            Some(Ctx::KeyInfo) => {
                if ds && local == "X509Data" {
                    Ctx::X509Data
                } else {
                    Ctx::SigIgnored
                }
            }
            Some(Ctx::X509Data) => {
                if ds && local == "X509IssuerSerial" {
                    Ctx::X509IssuerSerial
                } else {
                    Ctx::SigIgnored
                }
            }
            Some(Ctx::X509IssuerSerial) => {
                let raw = self.raw_sig();
                match (ds, local) {
                    (true, "X509IssuerName") if raw.issuer_name.is_none() => {
                        self.capture.clear();
                        Ctx::Capture(Field::IssuerName)
                    }
                    (true, "X509SerialNumber") if raw.serial_number.is_none() => {
                        self.capture.clear();
                        Ctx::Capture(Field::SerialNumber)
                    }
                    _ => Ctx::SigIgnored,
                }
            }
            Some(Ctx::SigLeaf) => {
                self.raw_sig()
                    .unsupported("child elements in a signature element that takes none");
                Ctx::SigIgnored
            }
            Some(Ctx::SigIgnored) => Ctx::SigIgnored,
        };
        Ok(ctx)
    }

    fn in_body(&self) -> bool {
        self.stack.get(1) == Some(&Ctx::Body)
    }

    fn other_in_body(&mut self, sr: bool, local: &str) -> Ctx {
        if sr && local == "ExecutionDateTime" && self.out.execution_date_time.is_none() {
            self.capture.clear();
            Ctx::Capture(Field::ExecutionDateTime)
        } else {
            Ctx::Other
        }
    }

    fn raw_sig(&mut self) -> &mut RawSignature {
        self.out.signature.get_or_insert_with(RawSignature::default)
    }

    fn end(&mut self, qname: &str, before: usize, after: usize) {
        let depth = self.stack.len();
        let ctx = self.stack.pop();
        if let Some(Ctx::Capture(f)) = ctx {
            let text = std::mem::take(&mut self.capture);
            match f {
                Field::Header(i) => {
                    if let Some(slot) = self.out.header.get_mut(i) {
                        slot.1 = text;
                    }
                }
                Field::BodyServiceReference => self.out.body_service_reference = Some(text),
                Field::BodySrv => self.out.body_srv = Some(text),
                Field::ExecutionDateTime => self.out.execution_date_time = Some(text),
                Field::DigestValue => self.raw_sig().digest_value = Some(text),
                Field::SignatureValue => self.raw_sig().signature_value = Some(text),
                Field::IssuerName => self.raw_sig().issuer_name = Some(text),
                Field::SerialNumber => self.raw_sig().serial_number = Some(text),
            }
        }
        if !(self.sig_depth.is_some() && self.doc_mode_skip_signature) {
            self.doc.end(qname);
        }
        if let Some(si) = self.si.as_mut() {
            si.end(qname);
        }
        if self.si_depth == Some(depth) {
            self.si_depth = None;
            if let Some(si) = self.si.take() {
                self.raw_sig().signed_info = si.out;
            }
        }
        if self.sig_depth == Some(depth) {
            self.sig_depth = None;
            if let Some(span) = self.out.signature_span.as_mut() {
                span.1 = after;
            }
        }
        self.scope.pop_frame();
        if depth == 1 {
            self.root_done = true;
            self.out.root_end = Some(before);
        }
    }

    fn text(&mut self, s: &str) -> Result<(), DuisError> {
        if matches!(self.stack.last(), Some(Ctx::Capture(_))) {
            if self.capture.len() + s.len() > 64 * 1024 {
                return Err(DuisError::invalid(
                    "field",
                    "",
                    "text field longer than 64 KiB",
                ));
            }
            self.capture.push_str(s);
        }
        if !(self.sig_depth.is_some() && self.doc_mode_skip_signature) {
            self.doc.text(s);
        }
        if let Some(si) = self.si.as_mut() {
            si.text(s);
        }
        Ok(())
    }
}

fn field_name(f: Field) -> &'static str {
    match f {
        Field::Header(_) => "Header field",
        Field::BodyServiceReference => "ServiceReference",
        Field::BodySrv => "ServiceReferenceVariant",
        Field::ExecutionDateTime => "ExecutionDateTime",
        Field::DigestValue => "ds:DigestValue",
        Field::SignatureValue => "ds:SignatureValue",
        Field::IssuerName => "ds:X509IssuerName",
        Field::SerialNumber => "ds:X509SerialNumber",
    }
}
