//! Which destinations may receive a signed request: the allow-list behind the SSRF guard.

use std::fmt;

use http::Uri;

use crate::cloud::AzureCloud;
use crate::credential::{is_ip_literal, is_loopback_host, Endpoint, Scheme};

/// Host suffixes the official SDKs allow for recording content (every cloud's ACS recording storage) and the public
/// cloud's blob storage; [`AllowList::for_cloud`] narrows it to one cloud.
pub(crate) const DEFAULT_STORAGE_SUFFIXES: &[&str] =
    &[".asm.skype.com", ".asyncgw.teams.microsoft.com", ".ams.gov.teams.microsoft.us", ".blob.core.windows.net"];

/// The destinations a signing key may be used for, besides the ACS endpoint itself.
///
/// Rules, checked in order:
/// 1. A URI without a host, or with user information, is refused.
/// 2. A host named with [`AllowList::allow_host`] is allowed over `https` or `http`, IP literals included, on
///    the named port (any port when none was named). This is the only way to allow loopback or IP literals.
/// 3. Otherwise the host must end with an allowed suffix (by default `.asm.skype.com`,
///    `.asyncgw.teams.microsoft.com`, `.ams.gov.teams.microsoft.us` and `.blob.core.windows.net`), must not be an
///    IP literal, and the scheme must be `https`.
///
/// ```
/// use acs_recording::signing::AllowList;
///
/// let allow = AllowList::azure_defaults().allow_host("127.0.0.1:9000")?;
/// assert!(allow.check(&"https://eu.asm.skype.com/v1/objects/1/content".parse()?).is_ok());
/// assert!(allow.check(&"http://127.0.0.1:9000/doc".parse()?).is_ok());
/// let refused = allow.check(&"https://evil.example/steal".parse()?).unwrap_err();
/// assert_eq!(refused.to_string(), "host `evil.example` is not on the allow-list");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AllowList {
    suffixes: Vec<String>,
    hosts: Vec<NamedHost>,
}

#[derive(Clone, PartialEq, Eq)]
struct NamedHost {
    host: String,
    port: Option<u16>,
}

impl AllowList {
    /// The recording storage suffixes the official SDKs allow, in every cloud, and the public cloud's blob storage:
    /// `.asm.skype.com`, `.asyncgw.teams.microsoft.com`, `.ams.gov.teams.microsoft.us` and
    /// `.blob.core.windows.net`; no named hosts.
    pub fn azure_defaults() -> Self {
        Self { suffixes: DEFAULT_STORAGE_SUFFIXES.iter().map(|s| (*s).to_owned()).collect(), hosts: Vec::new() }
    }

    /// The recording storage suffixes of one cloud ([`AzureCloud::storage_suffixes`]); no named hosts.
    ///
    /// ```
    /// use acs_recording::cloud::AzureCloud;
    /// use acs_recording::signing::AllowList;
    ///
    /// let china = AllowList::for_cloud(AzureCloud::China);
    /// assert!(china.check(&"https://acct.blob.core.chinacloudapi.cn/c/d".parse()?).is_ok());
    /// assert!(china.check(&"https://acct.blob.core.windows.net/c/d".parse()?).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn for_cloud(cloud: AzureCloud) -> Self {
        Self { suffixes: cloud.storage_suffixes().iter().map(|s| (*s).to_owned()).collect(), hosts: Vec::new() }
    }

    /// Nothing but what is added later.
    pub fn empty() -> Self {
        Self { suffixes: Vec::new(), hosts: Vec::new() }
    }

    /// Allows one host, `host` or `host:port` (IPv6 in brackets). Named hosts may use `http` and IP literals.
    pub fn allow_host(mut self, host_and_port: &str) -> Result<Self, InvalidHost> {
        let invalid = || InvalidHost(host_and_port.to_owned());
        let authority: http::uri::Authority = host_and_port.trim().parse().map_err(|_| invalid())?;
        if authority.as_str().contains('@') || authority.host().is_empty() {
            return Err(invalid());
        }
        // `Authority::port` hides an out-of-range port, so read the text after the host.
        let port = match authority.as_str()[authority.host().len()..].strip_prefix(':') {
            Some(port) => Some(port.parse::<u16>().map_err(|_| invalid())?),
            None => None,
        };
        self.hosts.push(NamedHost { host: authority.host().to_ascii_lowercase(), port });
        Ok(self)
    }

    /// Allows every `https` host ending with `suffix` (for example `.example.net`; a leading dot is added when
    /// missing, so that `example.net` does not allow `badexample.net`).
    pub fn allow_suffix(mut self, suffix: &str) -> Self {
        let suffix = suffix.trim().to_ascii_lowercase();
        let suffix = if suffix.starts_with('.') { suffix } else { format!(".{suffix}") };
        self.suffixes.push(suffix);
        self
    }

    /// Checks a destination. The error names the host and says why it was refused.
    pub fn check(&self, uri: &Uri) -> Result<(), Refused> {
        let Some(authority) = uri.authority() else {
            return Err(Refused::new(String::new(), RefusedReason::NoHost));
        };
        let host = authority.host().to_ascii_lowercase();
        if authority.as_str().contains('@') {
            return Err(Refused::new(host, RefusedReason::UserInfo));
        }
        if host.is_empty() {
            return Err(Refused::new(host, RefusedReason::NoHost));
        }
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
            Some(s) if s.eq_ignore_ascii_case("http") => Scheme::Http,
            _ => return Err(Refused::new(host, RefusedReason::Scheme)),
        };
        let port = authority.port_u16().unwrap_or(scheme.default_port());
        if self.hosts.iter().any(|named| named.host == host && named.port.is_none_or(|p| p == port)) {
            return Ok(());
        }
        if is_ip_literal(&host) || is_loopback_host(&host) {
            return Err(Refused::new(host, RefusedReason::IpLiteral));
        }
        if !self.suffixes.iter().any(|suffix| host.ends_with(suffix.as_str()) && host.len() > suffix.len()) {
            return Err(Refused::new(host, RefusedReason::NotAllowed));
        }
        if scheme != Scheme::Https {
            return Err(Refused::new(host, RefusedReason::Scheme));
        }
        Ok(())
    }

    /// Whether `uri` points at `endpoint` itself (same scheme, host and port).
    pub(crate) fn is_endpoint(endpoint: &Endpoint, uri: &Uri) -> bool {
        let (Some(authority), Some(scheme)) = (uri.authority(), uri.scheme_str()) else {
            return false;
        };
        scheme.eq_ignore_ascii_case(endpoint.scheme().as_str())
            && authority.host().eq_ignore_ascii_case(endpoint.host())
            && authority.port_u16().unwrap_or(endpoint.scheme().default_port()) == endpoint.port()
            && !authority.as_str().contains('@')
    }
}

impl Default for AllowList {
    fn default() -> Self {
        Self::azure_defaults()
    }
}

impl fmt::Debug for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|h| match h.port {
                Some(p) => format!("{}:{p}", h.host),
                None => h.host.clone(),
            })
            .collect();
        f.debug_struct("AllowList").field("suffixes", &self.suffixes).field("hosts", &hosts).finish()
    }
}

/// A host given to [`AllowList::allow_host`] that is not `host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidHost(String);

impl fmt::Display for InvalidHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a host or host:port", self.0)
    }
}

impl std::error::Error for InvalidHost {}

/// Why a destination was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusedReason {
    /// The URI has no host (a relative URI).
    NoHost,
    /// The URI carries user information.
    UserInfo,
    /// The scheme is not `https` (or `http` for a named host).
    Scheme,
    /// An IP literal or loopback host that was not named explicitly.
    IpLiteral,
    /// The host matches neither a named host nor an allowed suffix.
    NotAllowed,
}

/// A destination refused by an [`AllowList`]; its message names the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    host: String,
    reason: RefusedReason,
}

impl Refused {
    fn new(host: String, reason: RefusedReason) -> Self {
        Self { host, reason }
    }

    /// The refused host, lower-case (empty when the URI had none).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Why it was refused.
    pub fn reason(&self) -> RefusedReason {
        self.reason
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = &self.host;
        match self.reason {
            RefusedReason::NoHost => f.write_str("destination has no host"),
            RefusedReason::UserInfo => write!(f, "destination `{host}` carries user information"),
            RefusedReason::Scheme => write!(f, "host `{host}` is refused over a scheme other than https"),
            RefusedReason::IpLiteral => {
                write!(f, "host `{host}` is an IP literal or loopback host that was not allowed by name")
            }
            RefusedReason::NotAllowed => write!(f, "host `{host}` is not on the allow-list"),
        }
    }
}

impl std::error::Error for Refused {}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(allow: &AllowList, uri: &str) -> Result<(), RefusedReason> {
        allow.check(&uri.parse().unwrap()).map_err(|r| r.reason())
    }

    #[test]
    fn defaults_follow_the_official_sdks() {
        let allow = AllowList::azure_defaults();
        let table = [
            ("https://eu1.asm.skype.com/v1/objects/x/content/video", Ok(())),
            ("https://a.asyncgw.teams.microsoft.com/x", Ok(())),
            ("https://a.ams.gov.teams.microsoft.us/x", Ok(())),
            ("https://acct.blob.core.windows.net/c/b", Ok(())),
            ("https://EU1.ASM.SKYPE.COM:8443/x", Ok(())),
            ("https://asm.skype.com/x", Err(RefusedReason::NotAllowed)),
            ("https://.asm.skype.com/x", Err(RefusedReason::NotAllowed)),
            ("https://evilasm.skype.com/x", Err(RefusedReason::NotAllowed)),
            ("https://asm.skype.com.evil.net/x", Err(RefusedReason::NotAllowed)),
            ("http://eu1.asm.skype.com/x", Err(RefusedReason::Scheme)),
            ("ftp://eu1.asm.skype.com/x", Err(RefusedReason::Scheme)),
            ("https://10.0.0.1/x", Err(RefusedReason::IpLiteral)),
            ("https://[::1]/x", Err(RefusedReason::IpLiteral)),
            ("http://127.0.0.1:9000/x", Err(RefusedReason::IpLiteral)),
            ("https://localhost/x", Err(RefusedReason::IpLiteral)),
            ("https://user@eu1.asm.skype.com/x", Err(RefusedReason::UserInfo)),
            ("/relative/path", Err(RefusedReason::NoHost)),
        ];
        for (uri, expected) in table {
            assert_eq!(check(&allow, uri), expected, "{uri}");
        }
    }

    #[test]
    fn named_hosts_allow_loopback_http_and_ports() {
        let allow = AllowList::empty().allow_host("127.0.0.1:9000").unwrap().allow_host("[::1]").unwrap();
        assert_eq!(check(&allow, "http://127.0.0.1:9000/x"), Ok(()));
        assert_eq!(check(&allow, "http://127.0.0.1:9001/x"), Err(RefusedReason::IpLiteral));
        assert_eq!(check(&allow, "http://[::1]:1234/x"), Ok(()));
        assert_eq!(check(&allow, "https://eu1.asm.skype.com/x"), Err(RefusedReason::NotAllowed));
    }

    #[test]
    fn suffixes_get_a_leading_dot() {
        let allow = AllowList::empty().allow_suffix("example.net");
        assert_eq!(check(&allow, "https://a.example.net/"), Ok(()));
        assert_eq!(check(&allow, "https://badexample.net/"), Err(RefusedReason::NotAllowed));
    }

    #[test]
    fn invalid_named_hosts_are_errors() {
        for bad in ["", "a b", "user@host", "host:", "host:99999"] {
            assert!(AllowList::empty().allow_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn endpoint_match_needs_scheme_host_and_port() {
        let e = Endpoint::parse("http://127.0.0.1:4000/").unwrap();
        assert!(AllowList::is_endpoint(&e, &"http://127.0.0.1:4000/x".parse().unwrap()));
        assert!(!AllowList::is_endpoint(&e, &"http://127.0.0.1:4001/x".parse().unwrap()));
        assert!(!AllowList::is_endpoint(&e, &"https://127.0.0.1:4000/x".parse().unwrap()));
        let e = Endpoint::parse("https://a.communication.azure.com").unwrap();
        assert!(AllowList::is_endpoint(&e, &"https://A.communication.azure.com:443/x".parse().unwrap()));
    }
}
