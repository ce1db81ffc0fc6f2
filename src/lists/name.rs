//! Domain-name normalisation for list entries and config entries:
//! trim, strip one trailing dot, fold case, IDN (Unicode) → punycode,
//! and reject what cannot be a host name.

use std::borrow::Cow;

/// Why a string is not a usable domain name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty name")]
    Empty,
    #[error("IP address, not a domain name")]
    IpAddress,
    #[error("name longer than 253 characters")]
    TooLong,
    #[error("empty label (two dots in a row, or a leading dot)")]
    EmptyLabel,
    #[error("label longer than 63 characters")]
    LabelTooLong,
    #[error("character {0:?} is not allowed in a domain name")]
    BadCharacter(char),
    #[error("invalid internationalised name: {0}")]
    Idna(String),
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
}

/// Normalises a domain. Returns a borrowed string when the input already is
/// a lowercase ASCII host name (the common case: no allocation).
pub fn normalize(input: &str) -> Result<Cow<'_, str>, NameError> {
    let trimmed = input.trim();
    let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(NameError::Empty);
    }
    let name: Cow<'_, str> = if trimmed.bytes().all(is_host_byte) {
        Cow::Borrowed(trimmed)
    } else if trimmed.is_ascii() {
        let lower = trimmed.to_ascii_lowercase();
        if let Some(bad) = lower.chars().find(|c| !is_host_byte(*c as u8)) {
            return Err(NameError::BadCharacter(bad));
        }
        Cow::Owned(lower)
    } else {
        let ascii = idna::domain_to_ascii(trimmed).map_err(|e| NameError::Idna(e.to_string()))?;
        if let Some(bad) = ascii
            .chars()
            .find(|c| !c.is_ascii() || !is_host_byte(*c as u8))
        {
            return Err(NameError::BadCharacter(bad));
        }
        Cow::Owned(ascii)
    };
    check_shape(&name)?;
    Ok(name)
}

fn check_shape(name: &str) -> Result<(), NameError> {
    if name.len() > 253 {
        return Err(NameError::TooLong);
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(NameError::IpAddress);
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(NameError::LabelTooLong);
        }
    }
    Ok(())
}

/// True for a string that parses as an IPv4 or IPv6 address.
pub fn is_ip_address(text: &str) -> bool {
    text.parse::<std::net::IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_dots_and_idn() {
        assert_eq!(normalize("Example.COM.").unwrap(), "example.com");
        assert!(matches!(
            normalize("ads.example.com").unwrap(),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            normalize("bóng-đá.vn").unwrap(),
            "xn--bng--1qa7e.vn"
                .replace("xn--bng--1qa7e", &idna::domain_to_ascii("bóng-đá").unwrap())
        );
        assert_eq!(normalize("Bücher.de").unwrap(), "xn--bcher-kva.de");
        assert_eq!(
            normalize("under_score.blogspot.com").unwrap(),
            "under_score.blogspot.com"
        );
    }

    #[test]
    fn rejects_what_is_not_a_name() {
        assert_eq!(normalize(""), Err(NameError::Empty));
        assert_eq!(normalize("192.168.1.1"), Err(NameError::IpAddress));
        assert_eq!(normalize("a..b"), Err(NameError::EmptyLabel));
        assert_eq!(
            normalize(&format!("{}.com", "a".repeat(64))),
            Err(NameError::LabelTooLong)
        );
        assert!(matches!(
            normalize("bad domain"),
            Err(NameError::BadCharacter(' '))
        ));
        assert!(matches!(
            normalize("x/y.com"),
            Err(NameError::BadCharacter('/'))
        ));
        assert!(is_ip_address("::1") && !is_ip_address("example.com"));
    }
}
