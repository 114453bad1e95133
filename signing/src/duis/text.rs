//! Character-level rules: reading text and attribute values the way an XML 1.0 processor must
//! (line-end normalisation, attribute-value normalisation, the five predefined entities and
//! character references, nothing else) and writing them the way Canonical XML 1.0 §2.3 says.
//!
//! Why by hand: the digest is over these exact bytes. A `&#13;` in `SignatureValue` or a
//! carriage return in a text node must come out as `&#xD;`, a literal CR-LF as a line feed, a
//! tab in an attribute as `&#x9;` — the places where a general-purpose serialiser and XML-DSig
//! disagree.

use std::borrow::Cow;

use super::DuisError;

/// Whether `c` is a character XML 1.0 allows in a document.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Refuses characters XML 1.0 does not allow anywhere (control characters, U+FFFE, U+FFFF).
pub(crate) fn check_chars(s: &str) -> Result<(), DuisError> {
    let ok = |b: u8| b >= 0x20 || b == b'\t' || b == b'\n' || b == b'\r';
    // Fast path: a branch-free pass over 64-byte blocks (vectorised); the slow scan below runs
    // only to name the offending byte.
    if !s
        .as_bytes()
        .chunks(64)
        .all(|c| c.iter().fold(true, |acc, &b| acc & ok(b)))
    {
        if let Some((i, b)) = s.bytes().enumerate().find(|&(_, b)| !ok(b)) {
            return Err(DuisError::Xml {
                pos: i as u64,
                msg: format!("control character 0x{b:02X}"),
            });
        }
    }
    if !s.is_ascii() {
        if let Some((i, c)) = s.char_indices().find(|&(_, c)| !is_xml_char(c)) {
            return Err(DuisError::Xml {
                pos: i as u64,
                msg: format!("character U+{:04X} is not allowed in XML", c as u32),
            });
        }
    }
    Ok(())
}

/// Line-end normalisation (XML 1.0 §2.11): CR LF and lone CR become LF.
pub(crate) fn normalize_eol(s: &str) -> Cow<'_, str> {
    if !s.contains('\r') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\r' {
            if it.peek() == Some(&'\n') {
                it.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Resolves one reference's name (between `&` and `;`): a character reference or one of the
/// five predefined entities. Anything else is refused: there is no DTD to define it.
pub(crate) fn resolve_ref(name: &str) -> Result<char, DuisError> {
    let c = if let Some(num) = name.strip_prefix('#') {
        let v = if let Some(hex) = num.strip_prefix('x') {
            if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                None
            } else {
                u32::from_str_radix(hex, 16).ok()
            }
        } else if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            num.parse::<u32>().ok()
        };
        match v.and_then(char::from_u32) {
            Some(c) if is_xml_char(c) => c,
            _ => {
                return Err(DuisError::Xml {
                    pos: 0,
                    msg: format!("bad character reference &{};", truncate(name)),
                })
            }
        }
    } else {
        match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => return Err(DuisError::Entity(truncate(name))),
        }
    };
    Ok(c)
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// An attribute value as the XML processor reports it (XML 1.0 §3.3.3, CDATA type): references
/// resolved; literal tab, line feed and carriage return (after line-end normalisation) become
/// spaces, while the same characters written as references stay.
pub(crate) fn attr_value(raw: &str) -> Result<Cow<'_, str>, DuisError> {
    if !raw
        .bytes()
        .any(|b| matches!(b, b'&' | b'<' | b'\t' | b'\n' | b'\r'))
    {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '<', '\t', '\n', '\r']) {
        out.push_str(&rest[..i]);
        let c = rest.as_bytes()[i];
        rest = &rest[i + 1..];
        match c {
            b'<' => {
                return Err(DuisError::Xml {
                    pos: 0,
                    msg: "'<' in an attribute value".into(),
                })
            }
            b'&' => {
                let end = rest.find(';').ok_or_else(|| DuisError::Xml {
                    pos: 0,
                    msg: "unterminated reference in an attribute value".into(),
                })?;
                out.push(resolve_ref(&rest[..end])?);
                rest = &rest[end + 1..];
            }
            b'\r' => {
                out.push(' ');
                if rest.starts_with('\n') {
                    rest = &rest[1..];
                }
            }
            _ => out.push(' '),
        }
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Writes a text node's characters as Canonical XML does.
pub(crate) fn escape_text(out: &mut Vec<u8>, s: &str) {
    escape(out, s, |c| match c {
        b'&' => Some(b"&amp;"),
        b'<' => Some(b"&lt;"),
        b'>' => Some(b"&gt;"),
        b'\r' => Some(b"&#xD;"),
        _ => None,
    })
}

/// Writes an attribute value (or namespace URI) as Canonical XML does.
pub(crate) fn escape_attr(out: &mut Vec<u8>, s: &str) {
    escape(out, s, |c| match c {
        b'&' => Some(b"&amp;"),
        b'<' => Some(b"&lt;"),
        b'"' => Some(b"&quot;"),
        b'\t' => Some(b"&#x9;"),
        b'\n' => Some(b"&#xA;"),
        b'\r' => Some(b"&#xD;"),
        _ => None,
    })
}

/// Copies `s`, replacing the bytes `rep` names (all ASCII, so UTF-8 stays intact).
fn escape(out: &mut Vec<u8>, s: &str, rep: impl Fn(u8) -> Option<&'static [u8]>) {
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if let Some(r) = rep(c) {
            out.extend_from_slice(b.get(start..i).unwrap_or_default());
            out.extend_from_slice(r);
            start = i + 1;
        }
    }
    out.extend_from_slice(b.get(start..).unwrap_or_default());
}

/// Decodes base64 as XML-DSig writes it: whitespace (including the `&#13;` some signers put at
/// line ends, already resolved to CR) is ignored.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()
}

/// Encodes base64 (standard alphabet, padded, one line).
pub(crate) fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A decimal serial number (`X509SerialNumber`) as big-endian magnitude bytes without leading
/// zeros; `None` unless it is 1 to 60 ASCII digits (20 octets need at most 49).
pub(crate) fn decimal_to_bytes(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.is_empty() || s.len() > 60 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Little-endian base-256 accumulator: n = n * 10 + d.
    let mut n: Vec<u8> = Vec::with_capacity(24);
    for d in s.bytes().map(|b| b - b'0') {
        let mut carry = u32::from(d);
        for limb in n.iter_mut() {
            let v = u32::from(*limb) * 10 + carry;
            *limb = (v & 0xFF) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            n.push((carry & 0xFF) as u8);
            carry >>= 8;
        }
    }
    while n.last() == Some(&0) {
        n.pop();
    }
    n.reverse();
    Some(n)
}

/// Big-endian magnitude bytes as a decimal string (`0` for none).
pub(crate) fn bytes_to_decimal(b: &[u8]) -> String {
    let mut n: Vec<u8> = b.iter().copied().skip_while(|&x| x == 0).collect();
    if n.is_empty() {
        return "0".into();
    }
    let mut digits = Vec::new();
    while !n.is_empty() {
        let mut rem = 0u32;
        for limb in n.iter_mut() {
            let v = (rem << 8) | u32::from(*limb);
            *limb = (v / 10) as u8;
            rem = v % 10;
        }
        digits.push(b'0' + rem as u8);
        while n.first() == Some(&0) {
            n.remove(0);
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eol_normalisation() {
        assert_eq!(normalize_eol("a\r\nb\rc\n"), "a\nb\nc\n");
        assert!(matches!(normalize_eol("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn attribute_value_normalisation() {
        assert_eq!(attr_value("a\tb\r\nc\nd").unwrap(), "a b c d");
        assert_eq!(
            attr_value("&#9;&#xA;&#13;&amp;&lt;&quot;").unwrap(),
            "\t\n\r&<\""
        );
        assert!(matches!(attr_value("&xxe;"), Err(DuisError::Entity(_))));
        assert!(attr_value("a<b").is_err());
        assert!(attr_value("&#0;").is_err());
        assert!(attr_value("&amp").is_err());
    }

    #[test]
    fn escaping() {
        let mut o = Vec::new();
        escape_text(&mut o, "a&b<c>d\re\"f'\t\n");
        assert_eq!(o, b"a&amp;b&lt;c&gt;d&#xD;e\"f'\t\n");
        o.clear();
        escape_attr(&mut o, "a&b<c>d\re\"f'\t\n");
        assert_eq!(o, b"a&amp;b&lt;c>d&#xD;e&quot;f'&#x9;&#xA;");
    }

    #[test]
    fn decimal_serials() {
        let b = decimal_to_bytes("50669612984035780968362471400449834504").unwrap();
        assert_eq!(
            bytes_to_decimal(&b),
            "50669612984035780968362471400449834504"
        );
        assert_eq!(decimal_to_bytes("256").unwrap(), vec![1, 0]);
        assert_eq!(decimal_to_bytes("0").unwrap(), Vec::<u8>::new());
        assert_eq!(decimal_to_bytes("007").unwrap(), vec![7]);
        assert!(decimal_to_bytes("12a").is_none());
        assert!(decimal_to_bytes("").is_none());
        assert_eq!(bytes_to_decimal(&[0x01, 0x00]), "256");
    }

    #[test]
    fn base64_with_cr_and_breaks() {
        assert_eq!(base64_decode("ZGVm\r\nYXVs dA==").unwrap(), b"default");
        assert!(base64_decode("!!").is_none());
    }
}
