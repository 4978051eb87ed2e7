//! URLs as errors, `Debug` output and logs may show them.

/// A URL as errors, `Debug` output and logs may show it: `scheme://host[:port]/path`, user information dropped, the
/// query replaced by `?…` and the fragment dropped, because a storage URL's query can carry a SAS signature. Works on
/// any text, so that a location that does not even parse is shown the same way.
pub(crate) fn redact_url(text: &str) -> String {
    let text = text.split_once('#').map_or(text, |(before, _)| before);
    let (base, has_query) = match text.split_once('?') {
        Some((base, _)) => (base, true),
        None => (text, false),
    };
    let (scheme, rest) = match base.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), Some(rest)),
        None => (None, base.strip_prefix("//")),
    };
    let mut out = String::with_capacity(base.len() + 4);
    match rest {
        Some(rest) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
            if let Some(scheme) = scheme {
                out.push_str(scheme);
                out.push(':');
            }
            out.push_str("//");
            out.push_str(host);
            out.push_str(path);
        }
        None => out.push_str(base),
    }
    if has_query {
        out.push_str("?…");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_keep_scheme_host_port_and_path_only() {
        let table = [
            ("https://a.blob.core.windows.net/c/b?sv=1&sig=SECRET", "https://a.blob.core.windows.net/c/b?…"),
            ("https://a.example:8443/p?sig=SECRET#frag", "https://a.example:8443/p?…"),
            ("https://user:SECRET@a.example/p", "https://a.example/p"),
            ("https://a.example", "https://a.example"),
            ("https://a.example?sig=SECRET", "https://a.example?…"),
            ("https://a.example/p#x?sig=SECRET", "https://a.example/p"),
            ("//a.example/p?sig=SECRET", "//a.example/p?…"),
            ("/v1/objects/d?sig=SECRET", "/v1/objects/d?…"),
            ("https://a.example/d e?sig=SECRET", "https://a.example/d e?…"),
            ("?sig=SECRET", "?…"),
            ("", ""),
        ];
        for (url, shown) in table {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
