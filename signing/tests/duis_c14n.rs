//! Canonical XML as XML-DSig needs it, one case per rule (C14N 1.0 and Exclusive C14N, without
//! comments), each also checked against Python lxml (libxml2's canonicaliser, an independent
//! implementation) when it is installed; then every DUIS template and sample, whole and as the
//! two pieces XML-DSig digests (the document without its Signature, the SignedInfo).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use dcc_signing::duis::{canonicalize, C14nMode, DuisDocument, SignedDuis};

const LXML: &str = r#"
import sys, json, hashlib
from lxml import etree
DS = "http://www.w3.org/2000/09/xmldsig#"
out = {}
parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=False)
for path in sys.argv[1:]:
    tree = etree.parse(path, parser)
    r = {
        "inc": etree.tostring(tree, method="c14n", exclusive=False, with_comments=False).hex(),
        "exc": etree.tostring(tree, method="c14n", exclusive=True, with_comments=False).hex(),
    }
    root = tree.getroot()
    sig = [e for e in root if e.tag == "{%s}Signature" % DS]
    if sig:
        si = sig[0].find("{%s}SignedInfo" % DS)
        if si is not None:
            r["signed_info"] = etree.tostring(si, method="c14n", exclusive=True, with_comments=False).hex()
        # The enveloped-signature transform: the Signature goes, the text after it stays.
        s = sig[0]
        prev = s.getprevious()
        if s.tail:
            if prev is not None:
                prev.tail = (prev.tail or "") + s.tail
            else:
                root.text = (root.text or "") + s.tail
        root.remove(s)
        r["reference"] = hashlib.sha256(etree.tostring(tree, method="c14n", exclusive=False, with_comments=False)).hexdigest()
    out[path] = r
json.dump(out, sys.stdout)
"#;

fn lxml_available() -> bool {
    common::tool("python3", &["-c", "import lxml.etree"])
}

/// lxml's canonical forms for each file: {path: {inc, exc, signed_info?, reference?}} (hex).
fn lxml(files: &[PathBuf]) -> serde_json::Value {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(LXML)
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn unhex(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

/// (name, input, inclusive C14N, exclusive C14N).
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "XML declaration and whitespace outside the root dropped",
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n\n<a>x</a>\n\n",
        "<a>x</a>",
        "<a>x</a>",
    ),
    (
        "empty elements become start and end tags",
        "<a><b/><c x='1'/><d></d></a>",
        "<a><b></b><c x=\"1\"></c><d></d></a>",
        "<a><b></b><c x=\"1\"></c><d></d></a>",
    ),
    (
        "attributes sorted: unqualified by name, then by namespace URI; declarations first",
        "<a xmlns:z='urn:a' xmlns:b='urn:b' z:q='1' b:p='2' y='3' x='4' xmlns='urn:d'/>",
        "<a xmlns=\"urn:d\" xmlns:b=\"urn:b\" xmlns:z=\"urn:a\" x=\"4\" y=\"3\" z:q=\"1\" b:p=\"2\"></a>",
        "<a xmlns=\"urn:d\" xmlns:b=\"urn:b\" xmlns:z=\"urn:a\" x=\"4\" y=\"3\" z:q=\"1\" b:p=\"2\"></a>",
    ),
    (
        "namespace declarations on root and children; redundant ones dropped; unused ones kept \
         (inclusive) or moved to where they are used (exclusive)",
        "<r:a xmlns:r='urn:r' xmlns:u='urn:u'><r:b xmlns:r='urn:r'><u:c/></r:b><d xmlns:x='urn:x'/></r:a>",
        "<r:a xmlns:r=\"urn:r\" xmlns:u=\"urn:u\"><r:b><u:c></u:c></r:b><d xmlns:x=\"urn:x\"></d></r:a>",
        "<r:a xmlns:r=\"urn:r\"><r:b><u:c xmlns:u=\"urn:u\"></u:c></r:b><d></d></r:a>",
    ),
    (
        "default namespace and its undeclaration",
        "<a xmlns='urn:d'><b xmlns=''><c xmlns=''/></b><e xmlns='urn:d'/></a>",
        "<a xmlns=\"urn:d\"><b xmlns=\"\"><c></c></b><e></e></a>",
        "<a xmlns=\"urn:d\"><b xmlns=\"\"><c></c></b><e></e></a>",
    ),
    (
        "text escaping: & < > escaped, quotes not, CR as &#xD;",
        "<a>&amp; &lt; &gt; &quot; &apos; \" ' &#13; &#x41;</a>",
        "<a>&amp; &lt; &gt; \" ' \" ' &#xD; A</a>",
        "<a>&amp; &lt; &gt; \" ' \" ' &#xD; A</a>",
    ),
    (
        "attribute escaping and normalisation: literal whitespace becomes spaces, references stay",
        "<a x='&quot;&lt;&gt;&amp;&apos;' y='1\t2\n3' z='1&#9;2&#10;3&#13;'/>",
        "<a x=\"&quot;&lt;>&amp;'\" y=\"1 2 3\" z=\"1&#x9;2&#xA;3&#xD;\"></a>",
        "<a x=\"&quot;&lt;>&amp;'\" y=\"1 2 3\" z=\"1&#x9;2&#xA;3&#xD;\"></a>",
    ),
    (
        "line ends: CR LF and CR become LF; a CR written as &#13; stays",
        "<a>1\r\n2\r3&#13;\n4</a>",
        "<a>1\n2\n3&#xD;\n4</a>",
        "<a>1\n2\n3&#xD;\n4</a>",
    ),
    (
        "whitespace inside content kept, inside tags normalised",
        "<a   x = \"1\"  >\n  <b >  t  </b   >\n</a >",
        "<a x=\"1\">\n  <b>  t  </b>\n</a>",
        "<a x=\"1\">\n  <b>  t  </b>\n</a>",
    ),
    (
        "comments dropped, inside and outside the root",
        "<!-- before --><a><!-- in -->x<!-- in --></a><!-- after -->",
        "<a>x</a>",
        "<a>x</a>",
    ),
    (
        "CDATA becomes escaped text",
        "<a><![CDATA[<b> & ]]]]><![CDATA[>]]></a>",
        "<a>&lt;b&gt; &amp; ]]&gt;</a>",
        "<a>&lt;b&gt; &amp; ]]&gt;</a>",
    ),
    (
        "processing instructions kept, a line break between them and the root",
        "<?p1 data?><a><?p2   x ?></a><?p3?>",
        "<?p1 data?>\n<a><?p2 x ?></a>\n<?p3?>",
        "<?p1 data?>\n<a><?p2 x ?></a>\n<?p3?>",
    ),
    (
        "the xml: prefix is never declared",
        "<a xml:lang='en'><b xml:space='preserve'/></a>",
        "<a xml:lang=\"en\"><b xml:space=\"preserve\"></b></a>",
        "<a xml:lang=\"en\"><b xml:space=\"preserve\"></b></a>",
    ),
    (
        "a prefixed attribute makes its namespace visibly used (exclusive)",
        "<a xmlns:p='urn:p' xmlns:q='urn:q'><b p:x='1'/></a>",
        "<a xmlns:p=\"urn:p\" xmlns:q=\"urn:q\"><b p:x=\"1\"></b></a>",
        "<a><b xmlns:p=\"urn:p\" p:x=\"1\"></b></a>",
    ),
    (
        "non-ASCII text passes through as UTF-8",
        "<a t='é'>£ ✓</a>",
        "<a t=\"é\">£ ✓</a>",
        "<a t=\"é\">£ ✓</a>",
    ),
];

#[test]
fn each_canonicalisation_rule() {
    for (name, input, inc, exc) in CASES {
        let got = canonicalize(input.as_bytes(), C14nMode::Inclusive).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), *inc, "inclusive: {name}");
        let got = canonicalize(input.as_bytes(), C14nMode::Exclusive).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), *exc, "exclusive: {name}");
    }
}

#[test]
fn each_canonicalisation_rule_agrees_with_lxml() {
    if !lxml_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = CASES
        .iter()
        .enumerate()
        .map(|(i, (_, input, _, _))| {
            let f = tmp.path().join(format!("case{i}.xml"));
            std::fs::write(&f, input).unwrap();
            f
        })
        .collect();
    let ref_ = lxml(&files);
    for (f, (name, _, inc, exc)) in files.iter().zip(CASES) {
        let r = &ref_[f.to_str().unwrap()];
        assert_eq!(
            String::from_utf8(unhex(&r["inc"])).unwrap(),
            *inc,
            "lxml inclusive: {name}"
        );
        assert_eq!(
            String::from_utf8(unhex(&r["exc"])).unwrap(),
            *exc,
            "lxml exclusive: {name}"
        );
    }
}

fn xml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml")))
        .collect();
    v.sort();
    v
}

/// Every template and sample (but the XXE one, which we refuse to read): the whole document in
/// both canonical forms, and the two pieces XML-DSig digests, byte for byte as lxml makes them.
#[test]
fn templates_and_samples_agree_with_lxml() {
    let Some(dir) = common::vectors() else { return };
    if !lxml_available() {
        return;
    }
    let mut files = xml_files(&dir.join("templates"));
    files.extend(
        xml_files(&dir.join("samples"))
            .into_iter()
            .filter(|p| !p.ends_with("duis-xxe.xml")),
    );
    assert!(files.len() >= 297 + 16, "{}", files.len());
    let reference = lxml(&files);
    let mut signed_pieces = 0;
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        let r = &reference[f.to_str().unwrap()];
        let bytes = std::fs::read(f).unwrap();
        assert_eq!(
            canonicalize(&bytes, C14nMode::Inclusive).unwrap(),
            unhex(&r["inc"]),
            "{name}: inclusive"
        );
        assert_eq!(
            canonicalize(&bytes, C14nMode::Exclusive).unwrap(),
            unhex(&r["exc"]),
            "{name}: exclusive"
        );
        let doc = DuisDocument::parse(&bytes).unwrap();
        if let Some(want) = r.get("reference") {
            let s = SignedDuis::from_document(doc.clone());
            use sha2::Digest;
            let ours = sha2::Sha256::digest(doc.canonical());
            assert_eq!(
                hex::encode(ours),
                want.as_str().unwrap(),
                "{name}: reference digest"
            );
            if let (Ok(s), Some(si)) = (s, r.get("signed_info")) {
                assert_eq!(s.signature.signed_info, unhex(si), "{name}: SignedInfo");
                signed_pieces += 1;
            }
        }
    }
    assert!(signed_pieces >= 6, "{signed_pieces}");
}
