//! A queue's URL, split into what is shown (scheme, host, path) and what is secret (a SAS query).

use std::fmt;
use std::net::IpAddr;

use http::Uri;

use super::error::{Error, ErrorKind};

/// Where a queue is: `https://<account>.queue.core.windows.net/<queue>`, or path-style
/// `http://127.0.0.1:10001/<account>/<queue>` for Azurite; a SAS query, if any, is kept apart and never shown.
///
/// ```
/// use acs_recording::intake::queue::QueueUrl;
///
/// let url = QueueUrl::parse("https://contoso.queue.core.windows.net/acs-events?sv=2022-11-02&sig=SECRET")?;
/// assert_eq!((url.account(), url.queue()), ("contoso", "acs-events"));
/// assert!(url.has_sas());
/// assert_eq!(url.to_string(), "https://contoso.queue.core.windows.net/acs-events");
/// assert!(!format!("{url:?}").contains("SECRET"));
/// assert!(QueueUrl::parse("http://contoso.queue.core.windows.net/acs-events").is_err(), "plain http off loopback");
/// # Ok::<(), acs_recording::intake::queue::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct QueueUrl {
    /// `scheme://authority`, no trailing slash.
    origin: String,
    /// The path up to and including the queue name, starting with `/`.
    path: String,
    account: String,
    queue: String,
    /// The SAS query without its `?`.
    sas: Option<String>,
}

impl QueueUrl {
    /// Parses a queue URL. Plain http is accepted for loopback hosts (`localhost`, `127.0.0.0/8`, `::1`) only.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::new(ErrorKind::InvalidUrl, format!("invalid queue URL: {reason}"));
        let uri: Uri = url.trim().parse().map_err(|_| invalid("not a URL"))?;
        let scheme = uri.scheme_str().ok_or_else(|| invalid("no scheme"))?;
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        let host = authority.host();
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        match scheme {
            "https" => {}
            "http" if loopback => {}
            "http" => return Err(invalid("plain http is accepted for loopback hosts only")),
            _ => return Err(invalid("the scheme must be https")),
        }
        let path = uri.path().trim_end_matches('/');
        let segments: Vec<&str> = path.split('/').filter(|segment| !segment.is_empty()).collect();
        // Azure names the account in the host (`<account>.queue.core.windows.net`); an IP or localhost host (Azurite,
        // a local proxy) names it in the first path segment.
        let path_style = loopback || host.parse::<IpAddr>().is_ok();
        let (account, queue) = match (path_style, segments.as_slice()) {
            (true, [account, queue]) => (account.to_string(), queue.to_string()),
            (false, [queue]) => (host.split('.').next().unwrap_or_default().to_owned(), queue.to_string()),
            _ => return Err(invalid("the path must name the queue (and the account before it on loopback)")),
        };
        if account.is_empty() {
            return Err(invalid("no account name"));
        }
        let sas = uri.query().filter(|query| !query.is_empty()).map(str::to_owned);
        Ok(Self { origin: format!("{scheme}://{authority}"), path: path.to_owned(), account, queue, sas })
    }

    /// The storage account's name.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The queue's name.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Whether the URL carries a shared access signature.
    pub fn has_sas(&self) -> bool {
        self.sas.is_some()
    }

    /// The queue named `name` in the same account, with the same SAS (an account SAS covers it; a queue SAS
    /// does not, and its requests will be refused).
    pub fn sibling(&self, name: &str) -> Self {
        let parent = self.path.rsplit_once('/').map_or("", |(parent, _)| parent);
        Self { path: format!("{parent}/{name}"), queue: name.to_owned(), ..self.clone() }
    }

    /// The path of `suffix` under the queue (`""`, `/messages`, `/messages/<id>`).
    pub(super) fn path(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.path)
    }

    /// The full request URI of `path` with `query` (already encoded), the SAS appended.
    pub(super) fn request_uri(&self, path: &str, query: &str) -> String {
        let mut uri = format!("{}{path}", self.origin);
        let parts: Vec<&str> =
            [query, self.sas.as_deref().unwrap_or("")].into_iter().filter(|q| !q.is_empty()).collect();
        if !parts.is_empty() {
            uri.push('?');
            uri.push_str(&parts.join("&"));
        }
        uri
    }
}

impl fmt::Display for QueueUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin, self.path)
    }
}

impl fmt::Debug for QueueUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueUrl")
            .field("url", &self.to_string())
            .field("sas", &self.sas.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_queues_from_host_or_path() {
        let table = [
            ("https://acct.queue.core.windows.net/q1", "acct", "q1", "https://acct.queue.core.windows.net/q1"),
            ("https://acct.queue.core.windows.net/q1/", "acct", "q1", "https://acct.queue.core.windows.net/q1"),
            (
                "http://127.0.0.1:10001/devstoreaccount1/q2",
                "devstoreaccount1",
                "q2",
                "http://127.0.0.1:10001/devstoreaccount1/q2",
            ),
            (
                "http://localhost:10001/devstoreaccount1/q3?sig=x",
                "devstoreaccount1",
                "q3",
                "http://localhost:10001/devstoreaccount1/q3",
            ),
        ];
        for (input, account, queue, shown) in table {
            let url = QueueUrl::parse(input).unwrap();
            assert_eq!((url.account(), url.queue(), url.to_string().as_str()), (account, queue, shown), "{input}");
        }
    }

    #[test]
    fn refused_urls_say_why() {
        let table = [
            (
                "http://acct.queue.core.windows.net/q",
                "invalid queue URL: plain http is accepted for loopback hosts only",
            ),
            ("ftp://acct.queue.core.windows.net/q", "invalid queue URL: the scheme must be https"),
            (
                "https://acct.queue.core.windows.net/",
                "invalid queue URL: the path must name the queue (and the account before it on loopback)",
            ),
            (
                "http://127.0.0.1:10001/q",
                "invalid queue URL: the path must name the queue (and the account before it on loopback)",
            ),
        ];
        for (input, message) in table {
            assert_eq!(QueueUrl::parse(input).unwrap_err().to_string(), message, "{input}");
        }
    }

    #[test]
    fn the_sas_is_sent_and_never_shown() {
        let url = QueueUrl::parse("https://acct.queue.core.windows.net/q?sv=1&sig=SECRET").unwrap();
        assert_eq!(
            url.request_uri(&url.path("/messages"), "numofmessages=1"),
            "https://acct.queue.core.windows.net/q/messages?numofmessages=1&sv=1&sig=SECRET"
        );
        let poison = url.sibling("q-poison");
        assert_eq!(poison.to_string(), "https://acct.queue.core.windows.net/q-poison");
        assert!(!format!("{url:?}{url}{poison:?}").contains("SECRET"));
    }
}
