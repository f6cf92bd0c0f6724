//! Escaping helpers: RFC 5424 PARAM-VALUE escapes and our `#ooo` control
//! escapes (scheme described in the [`super`] module docs).

use std::borrow::Cow;

/// UTF-8 byte order mark that introduces MSG-UTF8.
pub const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// C0 controls and DEL: never written raw into SD values or MSG.
#[inline]
pub(crate) fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7F
}

#[inline]
fn is_octal(b: u8) -> bool {
    (b'0'..=b'7').contains(&b)
}

/// Value of the `#ooo` sequence starting at `i`, if there is one.
#[inline]
fn octal_escape_at(input: &[u8], i: usize) -> Option<u16> {
    match input.get(i..i.checked_add(4)?) {
        Some(&[b'#', a, b, c]) if is_octal(a) && is_octal(b) && is_octal(c) => {
            Some(u16::from(a - b'0') * 64 + u16::from(b - b'0') * 8 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// Does byte `i` need the `#ooo` treatment? Controls always; a `#` only when
/// it would otherwise read back as an escape.
#[inline]
fn needs_octal(input: &[u8], i: usize, b: u8) -> bool {
    is_control(b) || (b == b'#' && octal_escape_at(input, i).is_some())
}

#[inline]
pub(crate) fn push_octal(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[b'#', b'0' + (b >> 6), b'0' + ((b >> 3) & 7), b'0' + (b & 7)]);
}

/// Whether any raw control byte is present (decides defensive escaping in
/// the formatter).
#[inline]
pub(crate) fn has_control(input: &[u8]) -> bool {
    input.iter().any(|&b| is_control(b))
}

/// Append `input` with `#ooo` control escaping applied.
pub(crate) fn escape_controls_into(input: &[u8], out: &mut Vec<u8>) {
    for (i, &b) in input.iter().enumerate() {
        if needs_octal(input, i, b) {
            push_octal(out, b);
        } else {
            out.push(b);
        }
    }
}

/// `#ooo`-escape control bytes (and `#` that precedes three octal digits).
pub fn escape_controls_bytes(input: &[u8]) -> Cow<'_, [u8]> {
    if !input
        .iter()
        .enumerate()
        .any(|(i, &b)| needs_octal(input, i, b))
    {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len() + 16);
    escape_controls_into(input, &mut out);
    Cow::Owned(out)
}

/// `#ooo`-escape control characters of a string. The result never contains
/// a C0 control or DEL.
pub fn escape_controls(input: &str) -> Cow<'_, str> {
    let bytes = input.as_bytes();
    if !bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| needs_octal(bytes, i, b))
    {
        return Cow::Borrowed(input);
    }
    // Work on chars so the result is a String without re-validation; only
    // ASCII chars are ever replaced.
    let mut out = String::with_capacity(input.len() + 16);
    for (i, c) in input.char_indices() {
        if c.is_ascii() && needs_octal(bytes, i, c as u8) {
            let b = c as u8;
            out.push('#');
            out.push(char::from(b'0' + (b >> 6)));
            out.push(char::from(b'0' + ((b >> 3) & 7)));
            out.push(char::from(b'0' + (b & 7)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Undo [`escape_controls_bytes`]: every `#ooo` (value ≤ 0o377) becomes that
/// byte.
pub fn unescape_controls_bytes(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.contains(&b'#') {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        match octal_escape_at(input, i) {
            Some(v) if v <= 0xFF => {
                out.push(v as u8);
                i += 4;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// Undo [`escape_controls`]. Only ASCII values (`#000`..`#177`) are decoded
/// so the result stays valid UTF-8; the escaper never produces others.
pub fn unescape_controls(input: &str) -> Cow<'_, str> {
    let bytes = input.as_bytes();
    if !bytes.contains(&b'#') {
        return Cow::Borrowed(input);
    }
    let mut out = String::with_capacity(input.len());
    let mut chars = input.char_indices();
    while let Some((i, c)) = chars.next() {
        match octal_escape_at(bytes, i) {
            Some(v) if v < 0x80 => {
                out.push(char::from(v as u8));
                // Skip the three ASCII digits.
                chars.next();
                chars.next();
                chars.next();
            }
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Append a PARAM-VALUE (without the quotes): RFC escapes for `"`, `\`, `]`
/// and, if the value holds raw control bytes, `#ooo` escaping as well.
pub(crate) fn write_sd_value(value: &[u8], out: &mut Vec<u8>) {
    let controls = has_control(value);
    for (i, &b) in value.iter().enumerate() {
        match b {
            b'"' | b'\\' | b']' => {
                out.push(b'\\');
                out.push(b);
            }
            _ if controls && needs_octal(value, i, b) => push_octal(out, b),
            _ => out.push(b),
        }
    }
}

/// Escape a PARAM-VALUE for the wire (without the surrounding quotes):
/// `"`, `\` and `]` get a backslash; raw control characters are `#ooo`
/// escaped so the result is always line-safe.
/// `unescape_sd_value(&escape_sd_value(v)) == v` whenever `v` has no raw
/// control characters (otherwise it equals `escape_controls(v)`).
pub fn escape_sd_value(value: &str) -> Cow<'_, str> {
    let bytes = value.as_bytes();
    if !bytes
        .iter()
        .any(|&b| matches!(b, b'"' | b'\\' | b']') || is_control(b))
    {
        return Cow::Borrowed(value);
    }
    let mut out = Vec::with_capacity(bytes.len() + 8);
    write_sd_value(bytes, &mut out);
    // Only ASCII bytes were inserted or replaced, so this cannot fail; fall
    // back to a lossy copy rather than panic.
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// Strict RFC 5424 PARAM-VALUE unescaping: `\"`, `\\` and `\]` lose the
/// backslash; a backslash before anything else is kept literally (§6.3.3).
pub fn unescape_sd_value(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&n) = chars.peek()
            && matches!(n, '"' | '\\' | ']')
        {
            out.push(n);
            chars.next();
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Byte-level strict unescape used by the parser (input already validated).
pub(crate) fn unescape_sd_value_bytes(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'\\'
            && let Some(&n) = raw.get(i + 1)
            && matches!(n, b'"' | b'\\' | b']')
        {
            out.push(n);
            i += 2;
            continue;
        }
        out.push(b);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_round_trip() {
        for s in [
            "",
            "plain",
            "a\nb\r\0",
            "#012",
            "##012\n",
            "#0\n",
            "x#7777",
            "é\u{7f}#",
        ] {
            let e = escape_controls(s);
            assert!(!e.bytes().any(is_control), "{e:?}");
            assert_eq!(unescape_controls(&e), s);
            let eb = escape_controls_bytes(s.as_bytes());
            assert_eq!(eb.as_ref(), e.as_bytes());
            assert_eq!(unescape_controls_bytes(&eb).as_ref(), s.as_bytes());
        }
        assert_eq!(escape_controls("a\nb"), "a#012b");
        assert_eq!(escape_controls("#123"), "#043123");
    }

    #[test]
    fn sd_value_escapes() {
        assert_eq!(escape_sd_value(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
        assert_eq!(unescape_sd_value(r#"a\"b\\c\]d"#), r#"a"b\c]d"#);
        // Invalid escapes are kept verbatim (RFC 5424 §6.3.3).
        assert_eq!(unescape_sd_value(r"C:\new\x"), r"C:\new\x");
        assert_eq!(escape_sd_value("l1\nl2"), "l1#012l2");
    }
}
