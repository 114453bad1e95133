//! DUIS XML against DCC Boxed's own material (shared/vectors/dccboxed): the signed samples get
//! the verdicts the vectors README states, every reference template parses and checks, signs
//! and verifies, and any one-character change to signed content is caught.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use dcc_signing::duis::{
    matrix, DuisDocument, DuisError, DuisRequest, DuisResponse, Limits, ResponseBody, SignedDuis,
    XmlKeyring, XmlSigner,
};
use dcc_signing::pki::OrgCertificate;
use dcc_signing::verify::{KnownSignerVerifier, P256Verifier, Verifier};
use dcc_signing::{Signer, Srv};

mod common;
use common::{tool, vectors};

fn cert(dir: &Path, stem: &str) -> OrgCertificate {
    OrgCertificate::parse(&std::fs::read(dir.join("certs").join(format!("{stem}.pem"))).unwrap())
        .unwrap_or_else(|e| panic!("{stem}: {e}"))
}

fn xml_signer(dir: &Path, stem: &str) -> XmlSigner {
    let key = std::fs::read(dir.join("certs").join(format!("{stem}.key"))).unwrap();
    XmlSigner::new(Signer::from_pkcs8(&key).unwrap(), &cert(dir, stem)).unwrap()
}

/// Every certificate of the vectors, keys prepared by `verifier`.
fn keyring(dir: &Path, verifier: &dyn Verifier) -> XmlKeyring {
    let mut k = XmlKeyring::new();
    for e in std::fs::read_dir(dir.join("certs")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".pem") && !name.ends_with(".key.pem") {
            k.insert(
                OrgCertificate::parse(&std::fs::read(&p).unwrap()).unwrap(),
                verifier,
            );
        }
    }
    k
}

fn sample(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join("samples").join(name)).unwrap()
}

fn templates(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("templates"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn signed_samples_get_the_readme_verdicts() {
    let Some(dir) = vectors() else { return };
    let verifier = KnownSignerVerifier::default();
    let ring = keyring(&dir, &verifier);
    let lim = Limits::default();
    let signer_of = |name: &str| -> Result<String, DuisError> {
        let v = ring.verify(&sample(&dir, name), &lim)?;
        Ok(v.cert.subject.clone())
    };
    let valid = [
        (
            "readfw-response.xml",
            "dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1",
        ),
        (
            "readfw-response-resigned.xml",
            "Z1-accessControlBroker-dSPXmlSign",
        ),
        (
            "read-inventory-response-5.4.xml",
            "Z1-accessControlBroker-dSPXmlSign",
        ),
        (
            "read-inventory-response-4g.xml",
            "dsp-xml-sign-90B3D51F30000002-ds",
        ),
        ("message.xml", "Z1-accessControlBroker-ds"),
    ];
    for (name, stem) in valid {
        let subject = signer_of(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(subject, cert(&dir, stem).subject, "{name}");
    }
    // message.xml's certificate has expired since: the signature is valid, the certificate not.
    let c = cert(&dir, "Z1-accessControlBroker-ds");
    assert!(!c.is_valid_at(dcc_signing::pki::now_unix()));

    let refused = [
        ("readfw-response-badsignature.xml", "bad-signature"),
        ("readfw-response-invalid.xml", "invalid-value"),
        ("readfw-response-no-serial.xml", "missing-element"), // no X509SerialNumber
        ("readfw-response-nonexist-serial.xml", "unknown-signer"),
        ("readfw-response-no-signature.xml", "no-signature"),
        ("duis-xxe.xml", "doctype"),
        ("acknowledgement-error.xml", "no-signature"),
    ];
    for (name, code) in refused {
        let e = signer_of(name).expect_err(name);
        assert_eq!(e.code(), code, "{name}: {e}");
    }
    // The tampered signature's digest still matches: only the ECDSA half fails.
    let bad = SignedDuis::decode(&sample(&dir, "readfw-response-badsignature.xml")).unwrap();
    bad.check_reference().unwrap();
    // The acknowledgement reads as an unsigned E65 response.
    let ack = DuisDocument::parse(&sample(&dir, "acknowledgement-error.xml")).unwrap();
    let h = ack.response_header().unwrap();
    assert_eq!(h.response_code, "E65");
    assert!(!ack.has_signature());
}

#[test]
fn duis_matrix_matches_the_json() {
    let Some(dir) = vectors() else { return };
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("duis-request-matrix.json")).unwrap())
            .unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), matrix::rows().count());
    for r in rows {
        let srv: Srv = r["Service Reference Variant"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let info = matrix::srv_info(srv).unwrap_or_else(|| panic!("{srv} missing"));
        let yes = |k: &str| r[k].as_str() == Some("Yes");
        assert_eq!(info.is_critical(), yes("Critical"), "{srv}");
        assert_eq!(info.is_non_device(), yes("Non-Device Request"), "{srv}");
        assert_eq!(
            info.flags & matrix::ON_DEMAND != 0,
            yes("On Demand"),
            "{srv}"
        );
        assert_eq!(
            info.flags & matrix::DCC_SCHEDULED != 0,
            yes("DCC Scheduled"),
            "{srv}"
        );
        let fd = r["Future Dated Response Pattern"].as_str().unwrap();
        assert_eq!(
            info.flags & matrix::FUTURE_DATED_DEVICE != 0,
            fd.contains("Device"),
            "{srv}"
        );
        assert_eq!(
            info.flags & matrix::FUTURE_DATED_DSP != 0,
            fd.contains("DSP"),
            "{srv}"
        );
        // The JSON writes 6.20's Service Reference as "6.2" (a number-formatting slip: the
        // XSD's enumeration has 6.20, and 6.2 is another reference).
        let sr = r["Service Reference"].as_str().unwrap();
        let (a, b) = srv.reference();
        let expected = if (a, b) == (6, 20) {
            "6.2".to_owned()
        } else {
            format!("{a}.{b}")
        };
        assert_eq!(expected, sr, "{srv}");
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let name = r["Service Request Name"].as_str().unwrap();
        assert_eq!(srv.duis_name().map(words), Some(words(name)), "{srv}");
    }
}

/// Every reference template reads as a valid Request; signed, it verifies (known-signer and
/// plain p256 keys alike); its signature replaced again, it still verifies.
#[test]
fn every_template_signs_and_verifies() {
    let Some(dir) = vectors() else { return };
    let stem = "xml-sign-90B3D51F30010000-ds";
    let signer = xml_signer(&dir, stem);
    let known = KnownSignerVerifier::default();
    let plain = P256Verifier;
    let mut ring_known = XmlKeyring::new();
    ring_known.insert(cert(&dir, stem), &known);
    let mut ring_plain = XmlKeyring::new();
    ring_plain.insert(cert(&dir, stem), &plain);
    let ts = templates(&dir);
    assert_eq!(ts.len(), 297);
    let mut critical = 0;
    for (name, bytes) in &ts {
        let doc = DuisDocument::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let h = doc
            .request_header()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        critical += usize::from(h.critical);
        // The placeholder signature is there but is not a signature.
        assert!(SignedDuis::from_document(doc).is_err(), "{name}");

        let signed = signer
            .sign_document(bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let req = DuisRequest::decode(&signed).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(req.header, h, "{name}");
        let k = ring_known.signer_of(&req.signed).unwrap();
        req.signed
            .verify(k.key.as_ref())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        ring_plain.verify(&signed, &Limits::default()).unwrap();
        // Signing a signed document replaces its signature where it stands (RFC 6979
        // deterministic ECDSA: the same bytes again).
        assert_eq!(signer.sign_document(&signed).unwrap(), signed, "{name}");
    }
    assert!(critical > 100, "{critical}");
}

/// Replaces the alphanumeric byte at `i` by another of the same kind and case.
fn mutate(doc: &[u8], i: usize) -> Option<Vec<u8>> {
    let c = doc[i];
    let n = match c {
        b'0'..=b'8' | b'a'..=b'y' | b'A'..=b'Y' => c + 1,
        b'9' => b'0',
        b'z' => b'a',
        b'Z' => b'A',
        _ => return None,
    };
    let mut d = doc.to_vec();
    d[i] = n;
    Some(d)
}

/// One character changed anywhere in the signed content — markup, text, attributes, the XML
/// declaration, SignedInfo, SignatureValue — and the document no longer verifies. (The rest of
/// the Signature element is not signed: XML-DSig lets KeyInfo or an unused declaration on
/// ds:Signature change; what matters of KeyInfo is checked by the signer lookup. Nor are
/// comments.)
#[test]
fn one_changed_character_anywhere_fails() {
    let Some(dir) = vectors() else { return };
    let stem = "xml-sign-90B3D51F30010000-ds";
    let signer = xml_signer(&dir, stem);
    let mut ring = XmlKeyring::new();
    ring.insert(cert(&dir, stem), &KnownSignerVerifier::default());
    let ts = templates(&dir);
    let lim = Limits::default();
    let mut tried = 0;
    for (t, (name, bytes)) in ts.iter().enumerate() {
        let signed = signer.sign_document(bytes).unwrap();
        ring.verify(&signed, &lim).unwrap();
        // Every position of three templates, every 37th position of the others.
        let step = if t % 100 == 0 { 1 } else { 37 };
        let text = std::str::from_utf8(&signed).unwrap();
        let span = |open: &str, close: &str| {
            let a = text.find(open).unwrap();
            a..text.find(close).unwrap() + close.len()
        };
        let sig = span("<ds:Signature ", "</ds:Signature>");
        let si = span("<ds:SignedInfo>", "</ds:SignedInfo>");
        let sv = span("<ds:SignatureValue>", "</ds:SignatureValue>");
        // Comments are not signed either (C14N without comments).
        let comments: Vec<_> = text
            .match_indices("<!--")
            .map(|(a, _)| a..a + text[a..].find("-->").unwrap() + 3)
            .collect();
        let signed_content = |i: &usize| {
            (!sig.contains(i) || si.contains(i) || sv.contains(i))
                && !comments.iter().any(|c| c.contains(i))
        };
        for i in (t % step..signed.len())
            .step_by(step)
            .filter(signed_content)
        {
            let Some(m) = mutate(&signed, i) else {
                continue;
            };
            tried += 1;
            assert!(
                ring.verify(&m, &lim).is_err(),
                "{name}: changing byte {i} ({:?}) still verifies",
                String::from_utf8_lossy(&signed[i.saturating_sub(20)..(i + 20).min(signed.len())])
            );
        }
    }
    assert!(tried > 10_000, "{tried}");
}

/// What XML-DSig says about re-serialising: canonicalisation absorbs attribute order, quoting,
/// empty-element form, redundant declarations and line breaks inside base64; it does not absorb
/// a renamed prefix, nor a namespace declaration moved onto the root (the Reference digests
/// the root with its declarations — inclusive C14N), nor a SignedInfo rewritten with a default
/// namespace.
#[test]
fn reserialisation_behaves_as_xml_dsig_says() {
    let Some(dir) = vectors() else { return };
    let stem = "xml-sign-90B3D51F30010000-ds";
    let signer = xml_signer(&dir, stem);
    let mut ring = XmlKeyring::new();
    ring.insert(cert(&dir, stem), &KnownSignerVerifier::default());
    let lim = Limits::default();
    let src = std::fs::read(dir.join("templates/11.1_UPDATE_FIRMWARE_REQUEST_DUIS.XML")).unwrap();
    let signed = String::from_utf8(signer.sign_document(&src).unwrap()).unwrap();
    ring.verify(signed.as_bytes(), &lim).unwrap();
    let root_open = signed.find("<sr:Request").unwrap();
    let root_close = root_open + signed[root_open..].find('>').unwrap();
    let root_tag = &signed[root_open..=root_close];
    let check = |what: &str, doc: String, expect: Option<&str>| {
        assert_ne!(doc, signed, "{what}: no change made");
        let r = ring.verify(doc.as_bytes(), &lim);
        match expect {
            None => assert!(r.is_ok(), "{what}: {r:?}"),
            Some(code) => assert_eq!(r.err().map(|e| e.code()), Some(code), "{what}"),
        }
    };
    // Attributes and declarations in another order, single quotes.
    let reordered = "<sr:Request schemaVersion='5.4' xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
        xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" xmlns:ds='http://www.w3.org/2000/09/xmldsig#'>";
    assert!(
        root_tag.contains("xmlns:ds=") && root_tag.contains("xmlns:xsi="),
        "{root_tag}"
    );
    check(
        "attribute order",
        signed.replacen(root_tag, reordered, 1),
        None,
    );
    // A redundant declaration on a child, and an empty element written as start + end.
    check(
        "redundant declaration",
        signed.replacen(
            "<sr:Header>",
            "<sr:Header xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\">",
            1,
        ),
        None,
    );
    check(
        "empty element form",
        signed.replacen(
            "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>",
            "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\" ></ds:CanonicalizationMethod>",
            1,
        ),
        None,
    );
    // A line break with &#13; inside the base64 SignatureValue (as DCC Boxed writes it).
    let sv = signed.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len();
    let mut broken = signed.clone();
    broken.insert_str(sv + 40, "&#13;\n");
    check("line break in SignatureValue", broken, None);
    // Prefix renamed: the canonical bytes change.
    check(
        "prefix renamed",
        signed
            .replace("<sr:", "<duis:")
            .replace("</sr:", "</duis:")
            .replace("xmlns:sr=", "xmlns:duis="),
        Some("digest-mismatch"),
    );
    // The Signature's own declaration moved to the root: the digested root changes.
    let no_ds_on_root = signed.replacen(" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"", "", 1);
    check(
        "ds declaration removed from the root",
        no_ds_on_root,
        Some("digest-mismatch"),
    );
    // SignedInfo with a default namespace instead of ds: (same infoset, other bytes).
    let si_start = signed.find("<ds:SignedInfo>").unwrap();
    let si_end = signed.find("</ds:SignedInfo>").unwrap() + "</ds:SignedInfo>".len();
    let si = signed[si_start..si_end]
        .replace("<ds:", "<")
        .replace("</ds:", "</")
        .replacen(
            "<SignedInfo>",
            "<SignedInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\">",
            1,
        );
    let mut rewritten = signed.clone();
    rewritten.replace_range(si_start..si_end, &si);
    check(
        "SignedInfo with a default namespace",
        rewritten,
        Some("bad-signature"),
    );
}

#[test]
fn hostile_documents_are_refused() {
    let lim = Limits::default();
    let doc = |s: &str| DuisDocument::parse_with(s.as_bytes(), &lim).map(|_| ());
    let code = |s: &str| doc(s).err().map(|e| e.code());
    assert_eq!(
        code("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>"),
        Some("doctype")
    );
    assert_eq!(code("<a>&x;</a>"), Some("entity"));
    assert_eq!(code("<a b=\"&x;\"/>"), Some("entity"));
    let deep = "<a>".repeat(100) + &"</a>".repeat(100);
    assert_eq!(code(&deep), Some("too-deep"));
    let big = format!("<a>{}</a>", "x".repeat(lim.max_len));
    assert_eq!(code(&big), Some("too-large"));
    for bad in [
        "",
        "<a>",
        "<a></b>",
        "<a/><b/>",
        "text<a/>",
        "<a/>text",
        "<a x='1' x='2'/>",
        "<p:a/>",
        "<a p:x='1'/>",
        "<a>\u{1}</a>",
        "<a>&#0;</a>",
        "<a>&#xD800;</a>",
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>",
        "<a/><?xml version=\"1.0\"?>",
        "<a xmlns:p=''/>",
        "<a xmlns:xmlns='u'/>",
        "<a><![CDATA[x]]",
        "<a xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>",
    ] {
        assert!(doc(bad).is_err(), "{bad:?} accepted");
    }
    assert!(DuisDocument::parse(b"\xff<a/>").is_err());
    // A request whose SRV, CV or RequestID the schema refuses.
    let req = |id: &str, cv: &str, sr: &str, srv: &str| {
        format!(
            "<sr:Request xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" schemaVersion=\"5.4\">\
<sr:Header><sr:RequestID>{id}</sr:RequestID><sr:CommandVariant>{cv}</sr:CommandVariant>\
<sr:ServiceReference>{sr}</sr:ServiceReference><sr:ServiceReferenceVariant>{srv}</sr:ServiceReferenceVariant>\
</sr:Header><sr:Body><sr:X/></sr:Body></sr:Request>"
        )
    };
    let id = "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1000";
    let header = |s: String| DuisDocument::parse(s.as_bytes()).unwrap().request_header();
    let h = header(req(id, "1", "11.2", "11.2")).unwrap();
    assert_eq!(h.srv, Srv::new2(11, 2));
    assert_eq!(h.request_id.counter, 1000);
    for (bad_id, why) in [
        (
            "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:01",
            "leading zero",
        ),
        (
            "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:18446744073709551616",
            "over u64",
        ),
        (
            "90B3D51F30010000:00-DB-12-34-56-78-90-A0:1",
            "EUI without dashes",
        ),
        (
            "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0",
            "no counter",
        ),
    ] {
        let e = header(req(bad_id, "1", "11.2", "11.2")).unwrap_err();
        assert_eq!(
            (e.code(), e.response_code()),
            ("invalid-value", "R1"),
            "{why}"
        );
    }
    let e = header(req(id, "4", "11.2", "11.2")).unwrap_err();
    assert_eq!((e.code(), e.response_code()), ("cv-not-allowed", "E12"));
    let e = header(req(id, "1", "7.1", "7.1")).unwrap_err(); // critical: CV 4..7 only
    assert_eq!(e.response_code(), "E12");
    assert!(header(req(id, "4", "7.1", "7.1")).unwrap().critical);
    assert_eq!(
        header(req(id, "1", "11.2", "11.9")).unwrap_err().code(),
        "invalid-value"
    );
    assert_eq!(
        header(req(id, "1", "11.3", "11.2")).unwrap_err().code(),
        "invalid-value"
    );
    assert_eq!(
        header(req(id, "0", "11.2", "11.2")).unwrap_err().code(),
        "invalid-value"
    );
    // A request without a signature decodes for reading, not for the router.
    let e = DuisRequest::decode(req(id, "1", "11.2", "11.2").as_bytes()).unwrap_err();
    assert_eq!((e.code(), e.response_code()), ("no-signature", "R6"));
}

/// The router's answers: signed Responses and Acknowledgements that read back as DUIS
/// Responses, verify here, and verify in xmlsec1 (an independent implementation).
#[test]
fn signed_responses_verify_here_and_in_xmlsec1() {
    let Some(dir) = vectors() else { return };
    let stem = "dsp-xml-sign-90B3D51F30000002-ds";
    let signer = xml_signer(&dir, stem);
    let mut ring = XmlKeyring::new();
    ring.insert(cert(&dir, stem), &KnownSignerVerifier::default());
    let id =
        dcc_signing::duis::parse_request_id("90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1000")
            .unwrap();
    let mut r = DuisResponse::new(id, Some(Srv::new2(11, 2)), "I0", 1_660_751_141_087);
    r.body = ResponseBody::GbcsPayload("3QAAAAAAAFURAAAAAN8J".into());
    let ack = DuisResponse::acknowledgement(id, Some(Srv::new2(11, 2)), "I99", 1_660_751_141_087);
    let mut pre = DuisResponse::new(id, Some(Srv::new2(7, 1)), "I0", 0);
    pre.body = ResponseBody::PreCommand("AAEC".into());
    let tmp = tempfile::tempdir().unwrap();
    let have_xmlsec = tool("xmlsec1", &["--version"]);
    for (n, resp) in [r, ack, pre].iter().enumerate() {
        let xml = signer.sign_response(resp).unwrap();
        let v = ring.verify(&xml, &Limits::default()).unwrap();
        let h = v.signed.document.response_header().unwrap();
        assert_eq!(h.request_id, Some(id));
        assert_eq!(h.response_id, resp.response_id);
        assert_eq!(h.response_code, resp.response_code);
        if n == 0 {
            assert_eq!(h.response_date_time, "2022-08-17T15:45:41.087Z");
            assert_eq!(h.response_id, Some(id.response_id()));
        }
        if have_xmlsec {
            let f = tmp.path().join(format!("r{n}.xml"));
            std::fs::write(&f, &xml).unwrap();
            let out = xmlsec1_verify(&dir.join("certs").join(format!("{stem}.pem")), &f);
            assert!(
                out.status.success(),
                "xmlsec1: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // And xmlsec1 refuses it once a character of the body changed.
            let tampered = String::from_utf8(xml.clone())
                .unwrap()
                .replacen("I", "W", 1);
            std::fs::write(&f, tampered).unwrap();
            let out = xmlsec1_verify(&dir.join("certs").join(format!("{stem}.pem")), &f);
            assert!(!out.status.success());
        }
    }
}

/// `xmlsec1 --verify` with the signer's certificate as the only key (no id attribute is
/// needed: the Reference is `URI=""`).
fn xmlsec1_verify(cert: &Path, file: &Path) -> std::process::Output {
    std::process::Command::new("xmlsec1")
        .args(["--verify", "--pubkey-cert-pem"])
        .arg(cert)
        .arg(file)
        .output()
        .unwrap()
}

/// Templates signed here verify in xmlsec1 too.
#[test]
fn signed_templates_verify_in_xmlsec1() {
    let Some(dir) = vectors() else { return };
    if !tool("xmlsec1", &["--version"]) {
        return;
    }
    let stem = "xml-sign-90B3D51F30010000-ds";
    let signer = xml_signer(&dir, stem);
    let tmp = tempfile::tempdir().unwrap();
    // xmlsec1 is a process per document: every 10th template keeps the test short.
    for (name, bytes) in templates(&dir).iter().step_by(10) {
        let f = tmp.path().join(name);
        std::fs::write(&f, signer.sign_document(bytes).unwrap()).unwrap();
        let out = xmlsec1_verify(&dir.join("certs").join(format!("{stem}.pem")), &f);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn cli(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let mut all: Vec<&std::ffi::OsStr> = vec!["dcc-sign".as_ref(), "duis".as_ref()];
    all.extend_from_slice(args);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = dcc_signing::cli::main_with_args(all, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

/// `dcc-sign duis sign` signs every template; `dcc-sign duis verify` and the API accept each
/// result; the samples get their verdicts, the failure named.
#[test]
fn cli_signs_every_template_and_verifies() {
    let Some(dir) = vectors() else { return };
    let stem = "xml-sign-90B3D51F30010000-ds";
    let key = dir.join("certs").join(format!("{stem}.key"));
    let crt = dir.join("certs").join(format!("{stem}.pem"));
    let certs = dir.join("certs");
    let tmp = tempfile::tempdir().unwrap();
    let mut ring = XmlKeyring::new();
    ring.insert(cert(&dir, stem), &P256Verifier);
    let mut paths: Vec<_> = std::fs::read_dir(dir.join("templates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for t in &paths {
        let out = tmp.path().join(t.file_name().unwrap());
        let (code, _, err) = cli(&[
            "sign".as_ref(),
            "--key".as_ref(),
            key.as_ref(),
            "--cert".as_ref(),
            crt.as_ref(),
            t.as_ref(),
            "-o".as_ref(),
            out.as_ref(),
        ]);
        assert_eq!(code, 0, "{}: {err}", t.display());
        let (code, stdout, err) = cli(&[
            "verify".as_ref(),
            "--certs".as_ref(),
            certs.as_ref(),
            out.as_ref(),
        ]);
        assert_eq!(code, 0, "{}: {err}", t.display());
        assert!(stdout.contains(": valid: Request "), "{stdout}");
        ring.verify(&std::fs::read(&out).unwrap(), &Limits::default())
            .unwrap();
    }
    // Signing to standard output gives the same bytes.
    let (code, stdout, _) = cli(&[
        "sign".as_ref(),
        "--key".as_ref(),
        key.as_ref(),
        "--cert".as_ref(),
        crt.as_ref(),
        paths[0].as_ref(),
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout.as_bytes(),
        std::fs::read(tmp.path().join(paths[0].file_name().unwrap())).unwrap()
    );
    // A key that is not the certificate's is refused.
    let other = dir.join("certs/Z1-supplier-ds.key");
    let (code, _, err) = cli(&[
        "sign".as_ref(),
        "--key".as_ref(),
        other.as_ref(),
        "--cert".as_ref(),
        crt.as_ref(),
        paths[0].as_ref(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("key-mismatch"), "{err}");

    for (name, verdict) in [
        ("readfw-response.xml", None),
        ("message.xml", None),
        ("readfw-response-badsignature.xml", Some("(bad-signature)")),
        (
            "readfw-response-nonexist-serial.xml",
            Some("(unknown-signer)"),
        ),
        ("readfw-response-no-signature.xml", Some("(no-signature)")),
        (
            "readfw-response-no-serial.xml",
            Some("missing ds:X509SerialNumber"),
        ),
        ("readfw-response-invalid.xml", Some("(invalid-value)")),
        ("duis-xxe.xml", Some("(doctype)")),
    ] {
        let f = dir.join("samples").join(name);
        let (code, stdout, err) = cli(&[
            "verify".as_ref(),
            "--certs".as_ref(),
            certs.as_ref(),
            f.as_ref(),
        ]);
        match verdict {
            None => assert_eq!(code, 0, "{name}: {err}"),
            Some(what) => {
                assert_eq!(code, 1, "{name}: {stdout}");
                assert!(err.contains(what), "{name}: {err}");
            }
        }
    }
    // A document changed after signing: digest mismatch, named.
    let signed = std::fs::read_to_string(tmp.path().join(paths[0].file_name().unwrap())).unwrap();
    let f = tmp.path().join("changed.xml");
    std::fs::write(&f, signed.replacen(":1000<", ":1001<", 1)).unwrap();
    let (code, _, err) = cli(&[
        "verify".as_ref(),
        "--certs".as_ref(),
        certs.as_ref(),
        f.as_ref(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("digest mismatch"), "{err}");
}

mod prop {
    use super::*;
    use dcc_signing::duis::{canonicalize, C14nMode};
    use proptest::prelude::*;

    const SEED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<sr:Request \
xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" \
schemaVersion=\"5.4\"><sr:Header><sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1000</sr:RequestID>\
<sr:CommandVariant>1</sr:CommandVariant><sr:ServiceReference>11.2</sr:ServiceReference>\
<sr:ServiceReferenceVariant>11.2</sr:ServiceReferenceVariant></sr:Header><sr:Body><sr:ReadFirmwareVersion/>\
<x a='&#9;&amp;' xmlns:p='urn:p' p:b=\"1\">&#13;<![CDATA[<]]><!-- c --><?pi d?></x></sr:Body>\
<ds:Signature><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\
<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256\"/><ds:Reference URI=\"\">\
<ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/></ds:Transforms>\
<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>AAAA</ds:DigestValue>\
</ds:Reference></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature></sr:Request>";

    /// Whatever reads is canonicalised idempotently; nothing panics.
    fn exercise(data: &[u8]) {
        let Ok(doc) = DuisDocument::parse(data) else {
            return;
        };
        let _ = doc.request_header();
        let _ = doc.response_header();
        if let Ok(s) = SignedDuis::from_document(doc) {
            let _ = s.check_reference();
        }
        for mode in [C14nMode::Inclusive, C14nMode::Exclusive] {
            let once = canonicalize(data, mode).unwrap();
            assert_eq!(canonicalize(&once, mode).unwrap(), once, "{mode:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            exercise(&data);
        }

        /// A valid request, cut, spliced and overwritten: never a panic, and a canonical form
        /// that is its own canonical form.
        #[test]
        fn mutated_requests_never_panic(
            edits in proptest::collection::vec((0usize..2000, 0u8..3, any::<u8>()), 1..8)
        ) {
            let mut d = SEED.as_bytes().to_vec();
            exercise(&d);
            for (at, op, b) in edits {
                let at = at % (d.len() + 1);
                match op {
                    0 => d.insert(at, b),
                    1 if at < d.len() => { d.remove(at); }
                    _ if at < d.len() => d[at] = b"<>&;:='\"/ x!?-"[usize::from(b) % 14],
                    _ => {}
                }
            }
            exercise(&d);
        }
    }
}
