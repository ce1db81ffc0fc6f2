//! Domain-name normalisation, shared by the list parsers, the configuration
//! and the admin API, so that a name means the same thing everywhere.
//!
//! [`normalize`] trims white space, strips one trailing dot, folds ASCII
//! case, converts internationalised (Unicode) names to punycode with UTS 46
//! (the `idna` crate), and rejects what cannot be a host name. The result
//! holds only `a-z`, `0-9`, `-`, `_` and dots. Underscore is accepted: real
//! lists and real names carry it (`_dmarc`, `celsinho_v8.blogger.com.br`).
//!
//! It returns a [`Cow`]: the common case, a name that already is lowercase
//! ASCII, borrows from the input (a sub-slice with the white space and the
//! trailing dot cut off) and allocates nothing. Names that needed case folding
//! or IDN conversion are owned. Labels that already are punycode (`xn--…`)
//! are taken as they are, not decoded and re-checked.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

/// Longest name, in characters, without the trailing dot (RFC 1035 wire
/// limit of 255 bytes less the length bytes).
pub const MAX_NAME_LEN: usize = 253;
/// Longest label (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;

/// Why a string is not a usable domain name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty name")]
    Empty,
    #[error("IP address, not a domain name")]
    IpAddress,
    #[error("name of {len} characters, longer than the limit of 253")]
    TooLong { len: usize },
    #[error("empty label (a leading dot, or two dots in a row)")]
    EmptyLabel,
    #[error("label of {len} characters, longer than the limit of 63")]
    LabelTooLong { len: usize },
    #[error("character {ch:?} is not allowed in a domain name (only a-z, 0-9, '-', '_' and '.')")]
    InvalidCharacter { ch: char },
    #[error("internationalised name that UTS 46 cannot convert to punycode")]
    InvalidIdn,
}

/// Normalises a domain name: see the module documentation.
///
/// Borrows from `input` when nothing but trimming was needed.
pub fn normalize(input: &str) -> Result<Cow<'_, str>, NameError> {
    let trimmed = input.trim();
    let name = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    match classify(name.as_bytes()) {
        Shape::Lowercase => {
            check_ascii(name)?;
            Ok(Cow::Borrowed(name))
        }
        Shape::Uppercase => {
            let lower = name.to_ascii_lowercase();
            check_ascii(&lower)?;
            Ok(Cow::Owned(lower))
        }
        Shape::MaybeIp => {
            if is_ip_address(name) {
                return Err(NameError::IpAddress);
            }
            // Not an address after all: report the offending character.
            check_ascii(&name.to_ascii_lowercase())?;
            Err(NameError::InvalidCharacter { ch: ':' })
        }
        Shape::Unicode => {
            let ascii = idna::domain_to_ascii_cow(name.as_bytes(), idna::AsciiDenyList::EMPTY)
                .map_err(|_| NameError::InvalidIdn)?;
            // A Unicode full stop (`。`) at the end maps to a trailing dot.
            let ascii = match ascii.strip_suffix('.') {
                Some(stripped) if !trimmed.ends_with('.') => stripped.to_string(),
                _ => ascii.into_owned(),
            };
            check_ascii(&ascii)?;
            Ok(Cow::Owned(ascii))
        }
    }
}

/// True for a string that parses as an IPv4 or IPv6 address.
pub fn is_ip_address(text: &str) -> bool {
    text.parse::<IpAddr>().is_ok()
}

/// What a first pass over the bytes found.
enum Shape {
    /// Only lowercase host characters (or characters `check_ascii` rejects).
    Lowercase,
    /// ASCII with at least one uppercase letter.
    Uppercase,
    /// Contains `:`: an IPv6 address, or garbage.
    MaybeIp,
    /// Non-ASCII: needs UTS 46.
    Unicode,
}

fn classify(bytes: &[u8]) -> Shape {
    let mut shape = Shape::Lowercase;
    for &byte in bytes {
        match byte {
            b'A'..=b'Z' => shape = Shape::Uppercase,
            b':' => return Shape::MaybeIp,
            0x80.. => return Shape::Unicode,
            _ => {}
        }
    }
    shape
}

/// Checks characters, label lengths, total length, and rejects dotted-quad
/// IPv4 addresses. `name` is ASCII without a trailing dot.
fn check_ascii(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let mut label_len = 0usize;
    let mut only_digits_and_dots = true;
    for &byte in name.as_bytes() {
        match byte {
            b'.' => {
                if label_len == 0 {
                    return Err(NameError::EmptyLabel);
                }
                label_len = 0;
                continue;
            }
            b'0'..=b'9' => {}
            b'a'..=b'z' | b'-' | b'_' => only_digits_and_dots = false,
            _ => {
                return Err(NameError::InvalidCharacter {
                    ch: char::from(byte),
                });
            }
        }
        label_len += 1;
        if label_len > MAX_LABEL_LEN {
            let len = name
                .split('.')
                .map(str::len)
                .find(|&len| len > MAX_LABEL_LEN)
                .unwrap_or(label_len);
            return Err(NameError::LabelTooLong { len });
        }
    }
    if label_len == 0 {
        return Err(NameError::EmptyLabel);
    }
    if only_digits_and_dots && name.parse::<Ipv4Addr>().is_ok() {
        return Err(NameError::IpAddress);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: name.len() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercase_names_are_borrowed_without_the_trailing_dot() {
        let input = "  ads.example.com.\n";
        let name = normalize(input).unwrap();
        assert!(matches!(name, Cow::Borrowed("ads.example.com")));
        assert!(matches!(normalize("com"), Ok(Cow::Borrowed("com"))));
    }

    #[test]
    fn case_is_folded() {
        // Real lines: hostsvn/threat-domains.txt and hostsvn/gambling-domains.txt.
        assert_eq!(normalize("Free-4paid.com").unwrap(), "free-4paid.com");
        assert_eq!(
            normalize("www.188Betcn2.com.").unwrap(),
            "www.188betcn2.com"
        );
    }

    #[test]
    fn unicode_names_become_punycode() {
        // A real line of hostsvn/threat-domains.txt.
        assert_eq!(
            normalize("shopgcaothụ.vn").unwrap(),
            idna::domain_to_ascii("shopgcaothụ.vn").unwrap()
        );
        assert_eq!(normalize("Bücher.DE").unwrap(), "xn--bcher-kva.de");
        // Ideographic full stop as separator and at the end.
        assert_eq!(normalize("bücher。de。").unwrap(), "xn--bcher-kva.de");
        // Already punycode: taken as is.
        assert_eq!(
            normalize("xn--casinoerpnettet-plb.eu").unwrap(),
            "xn--casinoerpnettet-plb.eu"
        );
    }

    #[test]
    fn underscores_are_accepted() {
        assert_eq!(
            normalize("_video-bagarre.com").unwrap(),
            "_video-bagarre.com"
        );
        assert_eq!(
            normalize("___id___.c.mystat-in.net").unwrap(),
            "___id___.c.mystat-in.net"
        );
    }

    #[test]
    fn addresses_are_rejected_with_their_own_error() {
        for address in [
            "118.123.4.224",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "2001:db8::1",
            "1.2.3.4.",
        ] {
            assert_eq!(normalize(address), Err(NameError::IpAddress), "{address}");
        }
        assert_eq!(
            NameError::IpAddress.to_string(),
            "IP address, not a domain name"
        );
        // Names that only look numeric are names.
        assert_eq!(normalize("102.112.207.net").unwrap(), "102.112.207.net");
        assert_eq!(
            normalize("192.168.112.2o7.net").unwrap(),
            "192.168.112.2o7.net"
        );
        assert!(is_ip_address("::") && !is_ip_address("example.com"));
    }

    #[test]
    fn malformed_names_are_rejected() {
        assert_eq!(normalize(""), Err(NameError::Empty));
        assert_eq!(normalize("  . "), Err(NameError::Empty));
        assert_eq!(normalize("a..b"), Err(NameError::EmptyLabel));
        assert_eq!(normalize(".example.com"), Err(NameError::EmptyLabel));
        assert_eq!(normalize("example.com.."), Err(NameError::EmptyLabel));
        let long_label = format!("{}.com", "a".repeat(64));
        assert_eq!(
            normalize(&long_label),
            Err(NameError::LabelTooLong { len: 64 })
        );
        let label = "a".repeat(63);
        let long_name = [label.as_str(); 4].join(".");
        assert_eq!(normalize(&long_name), Err(NameError::TooLong { len: 255 }));
        assert_eq!(normalize(&long_name[..253]).unwrap().len(), 253);
        assert_eq!(
            normalize("bad domain.com"),
            Err(NameError::InvalidCharacter { ch: ' ' })
        );
        assert_eq!(
            normalize("example.com/path"),
            Err(NameError::InvalidCharacter { ch: '/' })
        );
        assert_eq!(
            normalize("*.example.com"),
            Err(NameError::InvalidCharacter { ch: '*' })
        );
        assert_eq!(
            normalize("local-zone:"),
            Err(NameError::InvalidCharacter { ch: ':' })
        );
        assert_eq!(normalize("xn--a.\u{200d}"), Err(NameError::InvalidIdn));
    }
}
