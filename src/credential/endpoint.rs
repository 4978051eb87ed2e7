//! The address of an ACS resource: its scheme and authority, and what counts as a loopback or IP host.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::{Error, ErrorKind};

/// The URL scheme of an [`Endpoint`] or a download location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `https`, the only scheme for non-loopback hosts.
    Https,
    /// `http`, allowed for loopback hosts and explicitly named hosts only.
    Http,
}

impl Scheme {
    /// The scheme's name, `https` or `http`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }

    /// The scheme's default port.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Https => 443,
            Scheme::Http => 80,
        }
    }
}

/// An ACS resource endpoint such as `https://contoso.communication.azure.com/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    scheme: Scheme,
    host: String,
    port: u16,
    /// `host[:port]`, the port only when it is not the scheme's default: the host that requests are signed for.
    authority: String,
}

impl Endpoint {
    /// Parses an endpoint URL. `http` is accepted for loopback hosts only; a path other than `/`, a query, a
    /// fragment or user information is an error.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::new(ErrorKind::InvalidEndpoint, format!("endpoint `{input}` {why}"));
        let uri: http::Uri = input.trim().parse().map_err(|_| invalid("is not a valid URL"))?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
            Some(s) if s.eq_ignore_ascii_case("http") => Scheme::Http,
            Some(_) => return Err(invalid("must use https")),
            None => return Err(invalid("has no scheme (expected `https://`)")),
        };
        let authority = uri.authority().ok_or_else(|| invalid("has no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("must not contain user information"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(invalid("must not have a path or query"));
        }
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return Err(invalid("has no host"));
        }
        let port = authority.port_u16().unwrap_or(scheme.default_port());
        if scheme == Scheme::Http && !is_loopback_host(&host) {
            return Err(Error::new(
                ErrorKind::InsecureEndpoint,
                format!("endpoint `{input}` uses http; only loopback hosts may (use https)"),
            ));
        }
        Ok(Self::from_parts(scheme, host, port))
    }

    fn from_parts(scheme: Scheme, host: String, port: u16) -> Self {
        let authority = if port == scheme.default_port() { host.clone() } else { format!("{host}:{port}") };
        Self { scheme, host, port, authority }
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host, lower-case; IPv6 literals keep their brackets (`[::1]`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, the scheme's default when the URL has none.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host[:port]` as it is signed: the port only when it is not the scheme's default.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The endpoint as a URL with a trailing `/`, e.g. `https://contoso.communication.azure.com/`.
    pub fn url(&self) -> String {
        format!("{}://{}/", self.scheme.as_str(), self.authority)
    }
}

impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}/", self.scheme.as_str(), self.authority)
    }
}

/// Whether `host` (as in a URI authority, IPv6 in brackets) is a loopback host: `localhost`, `127.0.0.0/8` or
/// `::1`.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    bare.parse::<IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

/// Whether `host` (as in a URI authority) is an IP literal rather than a name.
pub(crate) fn is_ip_literal(host: &str) -> bool {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    bare.parse::<IpAddr>().is_ok()
}
