//! Who a client is, for its budget: the caller's address as the platform reports it — never a
//! header a client can set on a direct call — kept only as a keyed hash.
//!
//! - Behind CloudFront (the deployment: `CHATBOT_ORIGIN_SECRETS` set, so every request that
//!   reaches a handler came through CloudFront) the address is CloudFront's
//!   `CloudFront-Viewer-Address` (`IP:port`), which CloudFront writes itself.
//! - Otherwise API Gateway's or the Function URL's `requestContext` source IP, or, on the local
//!   server, the TCP peer.
//!
//! An IPv4 address is one client; an IPv6 client is its /64 (the network a subscriber gets,
//! in which it can pick any address). The address is hashed with `CHATBOT_HASH_KEY`
//! (HMAC-SHA256) and only the hash is kept and used as a key: the store never holds an address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::app::AppState;
use crate::error::ApiError;

/// The hash of a client's address (or `unknown`, one shared budget for requests whose address
/// the platform did not give).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId(String);

impl ClientId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const VIEWER_ADDRESS_HEADER: &str = "cloudfront-viewer-address";

/// `CloudFront-Viewer-Address`: `198.51.100.10:46532`, or for IPv6 the address unbracketed
/// before the last `:` (`2001:db8::1:46532`).
pub fn parse_viewer_address(value: &str) -> Option<IpAddr> {
    let (ip, port) = value.trim().rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.trim_matches(|c| c == '[' || c == ']').parse().ok()
}

/// What a budget is kept per: an IPv4 address, or an IPv6 /64 — one subscriber's network (a
/// host picks any address in it, so per-address budgets would be unlimited).
pub fn budget_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The address the platform reports for this request.
pub fn client_address(parts: &Parts, behind_cloudfront: bool) -> Option<IpAddr> {
    if behind_cloudfront {
        // CloudFront sets this header; the origin secret proved the request came through it.
        return parts
            .headers
            .get_all(VIEWER_ADDRESS_HEADER)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(parse_viewer_address);
    }
    // The function is built for payload format 2.0 only (HTTP API and Function URL events).
    use lambda_http::request::RequestContext;
    if let Some(RequestContext::ApiGatewayV2(c)) = parts.extensions.get::<RequestContext>() {
        return c.http.source_ip.as_deref().and_then(|ip| ip.parse().ok());
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

impl FromRequestParts<AppState> for ClientId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let behind_cloudfront = !state.config().origin_secrets.is_empty();
        let id = match client_address(parts, behind_cloudfront) {
            Some(ip) => {
                let key = budget_key(ip);
                hex::encode(&state.hash_key().digest("client", key.as_bytes())[..16])
            }
            None => "unknown".to_owned(),
        };
        Ok(ClientId(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewer_addresses_parse() {
        assert_eq!(
            parse_viewer_address("198.51.100.10:46532"),
            Some("198.51.100.10".parse().unwrap())
        );
        assert_eq!(
            parse_viewer_address("2001:db8::1:46532"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(parse_viewer_address("198.51.100.10"), None);
        assert_eq!(
            budget_key("198.51.100.10".parse().unwrap()),
            "198.51.100.10"
        );
        assert_eq!(
            budget_key("2001:db8:aa:bb:1:2:3:4".parse().unwrap()),
            budget_key("2001:db8:aa:bb:ffff::9".parse().unwrap()),
        );
        assert_ne!(
            budget_key("2001:db8:aa:bb::1".parse().unwrap()),
            budget_key("2001:db8:aa:bc::1".parse().unwrap()),
        );
        assert_eq!(budget_key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
        assert_eq!(parse_viewer_address("nonsense:80"), None);
    }
}
