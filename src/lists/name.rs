//! PLACEHOLDER
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("invalid domain name")]
    Invalid,
    #[error("IP address, not a domain name")]
    IpAddress,
}
pub fn normalize(input: &str) -> Result<String, NameError> {
    let s = input.trim().trim_end_matches('.').to_ascii_lowercase();
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Err(NameError::IpAddress);
    }
    if s.is_empty()
        || s.len() > 253
        || s.split('.').any(|l| l.is_empty() || l.len() > 63)
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(NameError::Invalid);
    }
    Ok(s)
}
