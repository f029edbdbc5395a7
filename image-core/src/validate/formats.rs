//! String formats the image-spec requires: padded base64 (RFC 4648 section 4), URIs
//! (RFC 3986) and date-times (RFC 3339 section 5.6).

/// Decodes standard, padded base64 (`A-Z a-z 0-9 + /`, `=` padding, length a multiple of 4).
/// Returns the reason when the text is not valid.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return Err(format!(
            "is not padded base64: its length {} is not a multiple of 4",
            bytes.len()
        ));
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let chunks = bytes.chunks_exact(4);
    let last = chunks.len().saturating_sub(1);
    for (n, chunk) in chunks.enumerate() {
        let mut vals = [0u8; 4];
        let mut pad = 0;
        for (i, &c) in chunk.iter().enumerate() {
            if c == b'=' {
                // Padding: only the last one or two characters of the last group.
                if n != last || i < 2 {
                    return Err(format!(
                        "is not valid base64: '=' at offset {} is not trailing padding",
                        n * 4 + i
                    ));
                }
                pad += 1;
                continue;
            }
            if pad > 0 {
                return Err(format!(
                    "is not valid base64: {:?} at offset {} follows padding",
                    c as char,
                    n * 4 + i
                ));
            }
            vals[i] = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => {
                    return Err(format!(
                        "is not valid base64: character {:?} at offset {} is not in the \
                         base64 alphabet",
                        c as char,
                        n * 4 + i
                    ))
                }
            };
        }
        let word = (u32::from(vals[0]) << 18)
            | (u32::from(vals[1]) << 12)
            | (u32::from(vals[2]) << 6)
            | u32::from(vals[3]);
        let [_, a, b, c] = word.to_be_bytes();
        out.push(a);
        if pad < 2 {
            out.push(b);
        }
        if pad < 1 {
            out.push(c);
        }
    }
    Ok(out)
}

/// Checks that `s` is an RFC 3986 URI: a scheme, `:`, then only URI characters, with `%`
/// followed by two hex digits. Returns the reason when it is not.
pub(crate) fn check_uri(s: &str) -> Result<(), String> {
    let Some((scheme, rest)) = s.split_once(':') else {
        return Err("is not a URI: it has no scheme (such as \"https:\")".to_owned());
    };
    let mut sb = scheme.bytes();
    let scheme_ok = sb.next().is_some_and(|b| b.is_ascii_alphabetic())
        && sb.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err(format!(
            "is not a URI: scheme {scheme:?} must be a letter followed by letters, digits, '+', '-' or '.'"
        ));
    }
    let bytes = rest.as_bytes();
    let mut i = 0;
    let mut fragment = false;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let hex = |j: usize| bytes.get(j).is_some_and(|b| b.is_ascii_hexdigit());
                if !(hex(i + 1) && hex(i + 2)) {
                    return Err(format!(
                        "is not a URI: '%' at offset {} is not followed by two hex digits",
                        scheme.len() + 1 + i
                    ));
                }
                i += 3;
                continue;
            }
            b'#' if fragment => {
                return Err("is not a URI: it has more than one '#'".to_owned());
            }
            b'#' => fragment = true,
            b if b.is_ascii_alphanumeric() => {}
            b'-' | b'.' | b'_' | b'~' | b':' | b'/' | b'?' | b'[' | b']' | b'@' | b'!' | b'$'
            | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' => {}
            _ => {
                let c = rest[i..].chars().next().unwrap_or('\u{fffd}');
                return Err(format!(
                    "is not a URI: character {c:?} at offset {} must be percent-encoded",
                    scheme.len() + 1 + i
                ));
            }
        }
        i += 1;
    }
    Ok(())
}

/// Checks an RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
pub(crate) fn check_date_time(s: &str) -> Result<(), String> {
    let fail = || {
        Err("is not an RFC 3339 date-time such as \"2015-10-31T22:22:56.015925234Z\"".to_owned())
    };
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        part.iter()
            .try_fold(0u32, |acc, d| Some(acc * 10 + u32::from(d - b'0')))
    };
    let sep = |at: usize, ok: &[u8]| b.get(at).is_some_and(|c| ok.contains(c));
    let (Some(_year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) = (
        num(0, 4),
        num(5, 2),
        num(8, 2),
        num(11, 2),
        num(14, 2),
        num(17, 2),
    ) else {
        return fail();
    };
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return fail();
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return fail();
    }
    let mut i = 19;
    if sep(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return fail();
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => Ok(()),
        Some(b'+' | b'-') => {
            let (Some(oh), Some(om)) = (num(i + 1, 2), num(i + 4, 2)) else {
                return fail();
            };
            if sep(i + 3, b":") && i + 6 == b.len() && oh <= 23 && om <= 59 {
                Ok(())
            } else {
                fail()
            }
        }
        _ => fail(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(decode_base64("").unwrap(), b"");
        assert_eq!(decode_base64("e30=").unwrap(), b"{}");
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert_eq!(decode_base64("YWJj").unwrap(), b"abc");
        assert!(decode_base64("YQ").is_err());
        assert!(decode_base64("Y===").is_err());
        assert!(decode_base64("YQ==YWJj").is_err());
        assert!(decode_base64("Y=Q=").is_err());
        assert!(decode_base64("YW-j").is_err());
        assert!(decode_base64("YW\nj").is_err());
    }

    #[test]
    fn uri() {
        assert!(check_uri("https://example.com/foo").is_ok());
        assert!(check_uri("https://example.com/a%20b?x=1#frag").is_ok());
        assert!(check_uri("urn:isbn:0451450523").is_ok());
        assert!(check_uri("value").is_err());
        assert!(check_uri("1http://x").is_err());
        assert!(check_uri("http://exa mple.com").is_err());
        assert!(check_uri("http://x/%zz").is_err());
        assert!(check_uri("http://x/a#b#c").is_err());
        assert!(check_uri("http://x\\y").is_err());
        assert!(check_uri("http://é").is_err());
    }

    #[test]
    fn date_time() {
        assert!(check_date_time("2015-10-31T22:22:56.015925234Z").is_ok());
        assert!(check_date_time("2015-10-31T22:22:56Z").is_ok());
        assert!(check_date_time("2015-10-31T22:22:56+01:00").is_ok());
        assert!(check_date_time("2015-10-31").is_err());
        assert!(check_date_time("2015-13-31T22:22:56Z").is_err());
        assert!(check_date_time("2015-10-31T22:22:56").is_err());
        assert!(check_date_time("2015-10-31T22:22:56.Z").is_err());
        assert!(check_date_time("2015-10-31T22:22:56+0100").is_err());
        assert!(check_date_time("yesterday").is_err());
    }
}
