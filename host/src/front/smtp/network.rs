//! Client networks: the `allow` list (CIDR) checked at connect, and `[[smtp.trusted]]`
//! networks whose clients send as one staff member without AUTH.

use std::net::IpAddr;

use ipnet::IpNet;

/// The address as the lists compare it: an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, as a
/// dual-stack socket reports IPv4 clients) is the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is inside one of `networks`.
pub fn contains(networks: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    networks.iter().any(|n| n.contains(&ip))
}

/// Parses `10.0.0.0/8`, `::1/128` or a single address (a /32 or /128).
///
/// # Errors
/// Neither a network nor an address; the text says what is expected.
pub fn parse(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        format!(
            "'{text}' is not a network: write it as CIDR, such as \"10.0.0.0/8\" or \"::1/128\""
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_and_mapped_addresses() {
        let nets = vec![parse("10.0.0.0/8").unwrap(), parse("::1").unwrap()];
        assert!(contains(&nets, "10.1.2.3".parse().unwrap()));
        assert!(contains(&nets, "::ffff:10.1.2.3".parse().unwrap()));
        assert!(contains(&nets, "::1".parse().unwrap()));
        assert!(!contains(&nets, "11.0.0.1".parse().unwrap()));
        assert_eq!(parse("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert!(parse("10.0.0.0/33").unwrap_err().contains("CIDR"));
    }
}
