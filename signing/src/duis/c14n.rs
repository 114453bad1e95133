//! Canonical XML, rendered while the document streams past: inclusive Canonical XML 1.0
//! (`http://www.w3.org/TR/2001/REC-xml-c14n-20010315`, what the DUIS Reference digests) and
//! Exclusive XML Canonicalization 1.0 (`http://www.w3.org/2001/10/xml-exc-c14n#`, what
//! `SignedInfo` is canonicalised with), both without comments.
//!
//! Why streaming and not a tree: DUIS verifies one document per request, on the decode path;
//! a DOM per request costs allocations the ECDSA budget cannot spare. Canonical XML only needs,
//! at each element, the namespace bindings in scope and those already rendered by an output
//! ancestor — two stacks.
//!
//! The rules applied (C14N 1.0 §2.3, exc-C14N §3):
//! - the XML declaration and everything outside the root but processing instructions are
//!   dropped; comments are dropped everywhere;
//! - empty elements are written as start and end tag (`<a></a>`);
//! - namespace declarations come first, sorted by prefix (the default namespace first), then
//!   attributes sorted by (namespace URI, local name), unqualified ones first;
//! - a namespace declaration is written only where it changes what the nearest rendered
//!   ancestor declared. Inclusive: every binding in scope is a candidate (rendering the whole
//!   document, that reduces to the element's own declarations that change the binding).
//!   Exclusive: only prefixes the element *visibly utilises* — its own prefix (the default
//!   namespace when it has none) and its attributes' prefixes;
//! - `xmlns=""` is written only where it undoes a default namespace a rendered ancestor
//!   declared;
//! - text and attribute values are escaped as [`super::text`] says; attribute values are
//!   normalised first, so quoting style and whitespace inside tags disappear.

use super::text::{escape_attr, escape_text};

/// Which canonicalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum C14nMode {
    /// Canonical XML 1.0, without comments.
    Inclusive,
    /// Exclusive XML Canonicalization 1.0, without comments, no InclusiveNamespaces list.
    Exclusive,
}

/// The namespace bindings in scope: a stack of `(prefix, uri)` with one frame per open
/// element. The default namespace has the empty prefix; `xmlns=""` binds it to `""`.
#[derive(Debug, Default)]
pub(crate) struct NsScope {
    bindings: Vec<(String, String)>,
    frames: Vec<usize>,
}

/// The XML namespace, bound to `xml` without a declaration.
pub(crate) const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

impl NsScope {
    pub(crate) fn push_frame(&mut self) {
        self.frames.push(self.bindings.len());
    }

    pub(crate) fn bind(&mut self, prefix: &str, uri: &str) {
        self.bindings.push((prefix.to_owned(), uri.to_owned()));
    }

    pub(crate) fn pop_frame(&mut self) {
        if let Some(n) = self.frames.pop() {
            self.bindings.truncate(n);
        }
    }

    /// The URI `prefix` is bound to; the default namespace resolves to `""` when undeclared.
    pub(crate) fn lookup(&self, prefix: &str) -> Option<&str> {
        if prefix == "xml" {
            return Some(XML_NS);
        }
        match self.bindings.iter().rev().find(|(p, _)| p == prefix) {
            Some((_, u)) => Some(u),
            None if prefix.is_empty() => Some(""),
            None => None,
        }
    }

    /// The bindings declared on the innermost open element.
    pub(crate) fn own(&self) -> &[(String, String)] {
        let from = self.frames.last().copied().unwrap_or(0);
        self.bindings.get(from..).unwrap_or(&[])
    }

    pub(crate) fn total(&self) -> usize {
        self.bindings.len()
    }
}

/// One attribute other than a namespace declaration, ready to render.
#[derive(Debug)]
pub(crate) struct Attr<'a> {
    /// As written: `Algorithm`, `xsi:type`.
    pub(crate) qname: &'a str,
    /// The prefix, `""` for none.
    pub(crate) prefix: &'a str,
    /// The local name.
    pub(crate) local: &'a str,
    /// The namespace URI (`""` for an unqualified attribute).
    pub(crate) uri: &'a str,
    /// The normalised value.
    pub(crate) value: std::borrow::Cow<'a, str>,
}

/// Writes one canonical form into a buffer as elements arrive.
#[derive(Debug)]
pub(crate) struct Renderer {
    mode: C14nMode,
    pub(crate) out: Vec<u8>,
    /// Declarations rendered by open output elements, with one frame per element.
    rendered: Vec<(String, String)>,
    frames: Vec<usize>,
    /// Scratch: the declarations to write on the current element.
    decls: Vec<(String, String)>,
    order: Vec<usize>,
}

impl Renderer {
    pub(crate) fn new(mode: C14nMode, capacity: usize) -> Self {
        Renderer {
            mode,
            out: Vec::with_capacity(capacity),
            rendered: Vec::new(),
            frames: Vec::new(),
            decls: Vec::new(),
            order: Vec::new(),
        }
    }

    fn rendered_value(&self, prefix: &str) -> Option<&str> {
        self.rendered
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.as_str())
    }

    fn consider(&mut self, prefix: &str, uri: &str) {
        if prefix == "xml" || self.decls.iter().any(|(p, _)| p == prefix) {
            return;
        }
        let prior = self.rendered_value(prefix);
        let differs = if prefix.is_empty() {
            prior.unwrap_or("") != uri
        } else {
            prior != Some(uri)
        };
        if differs {
            self.decls.push((prefix.to_owned(), uri.to_owned()));
        }
    }

    /// Renders a start tag. `scope` already holds this element's own declarations.
    pub(crate) fn start(&mut self, qname: &str, prefix: &str, scope: &NsScope, attrs: &[Attr<'_>]) {
        self.decls.clear();
        match self.mode {
            C14nMode::Inclusive => {
                for (p, u) in scope.own() {
                    self.consider(p, u);
                }
            }
            C14nMode::Exclusive => {
                let u = scope.lookup(prefix).unwrap_or("");
                self.consider(prefix, u);
                for a in attrs {
                    if !a.prefix.is_empty() {
                        self.consider(a.prefix, a.uri);
                    }
                }
            }
        }
        self.decls.sort_by(|a, b| a.0.cmp(&b.0));
        self.out.push(b'<');
        self.out.extend_from_slice(qname.as_bytes());
        for (p, u) in &self.decls {
            if p.is_empty() {
                self.out.extend_from_slice(b" xmlns=\"");
            } else {
                self.out.extend_from_slice(b" xmlns:");
                self.out.extend_from_slice(p.as_bytes());
                self.out.extend_from_slice(b"=\"");
            }
            escape_attr(&mut self.out, u);
            self.out.push(b'"');
        }
        self.order.clear();
        self.order.extend(0..attrs.len());
        self.order
            .sort_by(|&i, &j| match (attrs.get(i), attrs.get(j)) {
                (Some(a), Some(b)) => (a.uri, a.local).cmp(&(b.uri, b.local)),
                _ => std::cmp::Ordering::Equal,
            });
        for &i in &self.order {
            let Some(a) = attrs.get(i) else { continue };
            self.out.push(b' ');
            self.out.extend_from_slice(a.qname.as_bytes());
            self.out.extend_from_slice(b"=\"");
            escape_attr(&mut self.out, &a.value);
            self.out.push(b'"');
        }
        self.out.push(b'>');
        self.frames.push(self.rendered.len());
        self.rendered.append(&mut self.decls);
    }

    /// Renders an end tag.
    pub(crate) fn end(&mut self, qname: &str) {
        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(qname.as_bytes());
        self.out.push(b'>');
        if let Some(n) = self.frames.pop() {
            self.rendered.truncate(n);
        }
    }

    /// Renders character data (already resolved and line-end normalised).
    pub(crate) fn text(&mut self, s: &str) {
        escape_text(&mut self.out, s);
    }

    /// Renders a processing instruction (`target data`, as between `<?` and `?>`).
    pub(crate) fn pi(&mut self, content: &str, before_root: bool, after_root: bool) {
        let (target, data) = match content.find(|c: char| c.is_ascii_whitespace()) {
            Some(i) => (&content[..i], content[i..].trim_start()),
            None => (content, ""),
        };
        if after_root {
            self.out.push(b'\n');
        }
        self.out.extend_from_slice(b"<?");
        self.out.extend_from_slice(target.as_bytes());
        if !data.is_empty() {
            self.out.push(b' ');
            self.out.extend_from_slice(data.as_bytes());
        }
        self.out.extend_from_slice(b"?>");
        if before_root {
            self.out.push(b'\n');
        }
    }
}
