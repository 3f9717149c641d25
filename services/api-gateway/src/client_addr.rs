//! Who the client is, by address: the TCP peer, unless the peer is a trusted proxy
//! (the ALB), in which case the address that proxy appended to `X-Forwarded-For`.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

fn trusted(addr: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&addr))
}

/// The client's address. A client may write anything into `X-Forwarded-For`; each
/// proxy appends the address it saw, so the list is read from the right and the first
/// address that is not a trusted proxy is the client. Only a trusted peer's header is
/// read at all; an unparsable entry ends the walk there (what is left of it was
/// written by someone untrusted).
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted(peer, proxies) {
        return peer;
    }
    let mut client = peer;
    let entries = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
    for entry in entries.iter().rev().flat_map(|v| v.rsplit(',')) {
        let Ok(addr) = entry.trim().parse::<IpAddr>() else { break };
        client = addr.to_canonical();
        if !trusted(client, proxies) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn addr(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    fn with_xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).expect("value"));
        }
        headers
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let proxies = ["10.0.0.0/16".parse().expect("net")];
        assert_eq!(client_addr(addr("203.0.113.5"), &with_xff(&["198.51.100.1"]), &proxies), addr("203.0.113.5"));
        assert_eq!(client_addr(addr("10.0.1.2"), &with_xff(&["198.51.100.1"]), &[]), addr("10.0.1.2"));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_address_is_the_client() {
        let proxies = ["10.0.0.0/16".parse().expect("net")];
        let alb = addr("10.0.1.2");
        // The client forged the first entry; the ALB appended the real one.
        assert_eq!(client_addr(alb, &with_xff(&["6.6.6.6, 198.51.100.1"]), &proxies), addr("198.51.100.1"));
        // Two proxies, two headers.
        assert_eq!(client_addr(alb, &with_xff(&["198.51.100.1", "10.0.2.2"]), &proxies), addr("198.51.100.1"));
        // No header: the proxy itself.
        assert_eq!(client_addr(alb, &HeaderMap::new(), &proxies), alb);
        // Garbage ends the walk at the last good address.
        assert_eq!(client_addr(alb, &with_xff(&["1.2.3.4, junk, 10.0.3.3"]), &proxies), addr("10.0.3.3"));
        // IPv4-mapped IPv6 peers are matched as IPv4.
        assert_eq!(client_addr(addr("::ffff:10.0.1.2"), &with_xff(&["198.51.100.1"]), &proxies), addr("198.51.100.1"));
    }
}
