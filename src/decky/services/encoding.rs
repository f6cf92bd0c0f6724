//! Small decoders for credentials carried in protocols: base64 (HTTP Basic, SMTP AUTH) and
//! `application/x-www-form-urlencoded` (HTTP login forms). Lenient: attackers send garbage,
//! and garbage still gets logged rather than rejected.

/// Standard base64 (padding optional, whitespace ignored); `None` on any other byte.
pub fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    let mut padding = false;
    for &c in input {
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            b'=' => {
                padding = true;
                continue;
            }
            _ if padding => return None,
            _ => {}
        }
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

pub fn base64_encode(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-decoding with `+` as space; malformed escapes are kept literally.
pub fn form_decode(input: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                if let (Some(h), Some(l)) = (
                    input.get(i + 1).and_then(|&c| hex(c)),
                    input.get(i + 2).and_then(|&c| hex(c)),
                ) {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// `k=v&k2=v2` pairs, decoded.
pub fn form_pairs(body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    body.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (form_decode(&p[..i]), form_decode(&p[i + 1..])),
            None => (form_decode(p), Vec::new()),
        })
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_table() {
        let cases: &[(&str, Option<&[u8]>)] = &[
            ("", Some(b"")),
            ("YWxpY2U6czNjcmV0", Some(b"alice:s3cret")),
            ("YQ==", Some(b"a")),
            ("YWI=", Some(b"ab")),
            ("YWI", Some(b"ab")),
            ("AGFsaWNlAHB3", Some(b"\0alice\0pw")),
            ("Y W\r\nI=", Some(b"ab")),
            ("YQ==YQ", None),
            ("!!!!", None),
        ];
        for (i, want) in cases {
            assert_eq!(base64_decode(i.as_bytes()).as_deref(), *want, "{i}");
        }
        for s in [&b""[..], b"a", b"ab", b"abc", b"\xff\x00\x10\x80"] {
            assert_eq!(base64_decode(base64_encode(s).as_bytes()).unwrap(), s);
        }
        assert_eq!(base64_encode(b"Username:"), "VXNlcm5hbWU6");
    }

    #[test]
    fn form_table() {
        assert_eq!(form_decode(b"a+b%20c%2"), b"a b c%2");
        assert_eq!(form_decode(b"%zz%41"), b"%zzA");
        assert_eq!(
            form_pairs(b"username=ad%26min&password=p%3Dw+1&&x"),
            vec![
                (b"username".to_vec(), b"ad&min".to_vec()),
                (b"password".to_vec(), b"p=w 1".to_vec()),
                (b"x".to_vec(), b"".to_vec()),
            ]
        );
    }
}
