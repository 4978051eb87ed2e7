//! Storage Shared Key: the string-to-sign of a queue request and its HMAC-SHA256 signature, pure functions.

use crate::credential::AccessKey;
use crate::signing::HmacKey;

/// What of a request goes into its Shared Key signature.
#[derive(Debug)]
pub(crate) struct Canonical<'a> {
    pub(crate) method: &'a str,
    /// 0 is signed as an empty line (service versions 2015-02-21 and later).
    pub(crate) content_length: usize,
    pub(crate) content_type: &'a str,
    /// The `x-ms-` headers, any case and order.
    pub(crate) ms_headers: &'a [(&'a str, &'a str)],
    pub(crate) account: &'a str,
    /// The request path as sent (percent-encoded), starting with `/`.
    pub(crate) path: &'a str,
    /// The query parameters, decoded, any order.
    pub(crate) query: &'a [(&'a str, &'a str)],
}

/// The Shared Key string-to-sign (Storage services, version 2009-09-19 and later): the verb, eleven standard
/// header lines of which only Content-Length and Content-Type are used here (the `x-ms-date` header stands in for
/// `Date`), the canonicalized `x-ms-` headers, then the canonicalized resource.
pub(crate) fn string_to_sign(request: &Canonical<'_>) -> String {
    let length = match request.content_length {
        0 => String::new(),
        n => n.to_string(),
    };
    // Verb, Content-Encoding, Content-Language, Content-Length, Content-MD5, Content-Type, Date, If-Modified-Since,
    // If-Match, If-None-Match, If-Unmodified-Since, Range.
    let mut out = format!("{}\n\n\n{length}\n\n{}\n\n\n\n\n\n\n", request.method, request.content_type);
    // Headers: lower-case names, sorted, `name:value`, each value's runs of whitespace folded to one space.
    let mut headers: Vec<(String, String)> = request
        .ms_headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect();
    headers.sort();
    for (name, value) in headers {
        out.push_str(&name);
        out.push(':');
        out.push_str(&value);
        out.push('\n');
    }
    // Resource: `/<account><path>`, then each query parameter on its own line, lower-case names sorted, a repeated
    // name's values sorted and joined with commas.
    out.push('/');
    out.push_str(request.account);
    out.push_str(request.path);
    let mut names: Vec<String> = request.query.iter().map(|(name, _)| name.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let mut values: Vec<&str> =
            request.query.iter().filter(|(n, _)| n.eq_ignore_ascii_case(&name)).map(|(_, v)| *v).collect();
        values.sort_unstable();
        out.push('\n');
        out.push_str(&name);
        out.push(':');
        out.push_str(&values.join(","));
    }
    out
}

/// `SharedKey <account>:<base64 HMAC-SHA256 of string_to_sign under the account key>`.
pub(crate) fn authorization(key: &HmacKey, account: &str, string_to_sign: &str) -> String {
    format!("SharedKey {account}:{}", key.signature(string_to_sign).as_str())
}

/// The prepared key of an account key.
pub(crate) fn hmac_key(key: &AccessKey) -> HmacKey {
    HmacKey::new(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Azurite's well-known development key, as Microsoft documents it for the emulator.
    const AZURITE_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn delete() -> String {
        string_to_sign(&Canonical {
            method: "DELETE",
            content_length: 0,
            content_type: "",
            ms_headers: &[("X-MS-Version", "2021-12-02"), ("x-ms-date", "Mon,  07 Dec 2026 01:00:00 GMT")],
            account: "devstoreaccount1",
            path: "/devstoreaccount1/acs-events/messages/0b2c7e0c-1b9a-4a57-9b3e-5c8f9b2d1a00",
            query: &[("popreceipt", "AgAAAAMAAAAAAAAA+/w=")],
        })
    }

    #[test]
    fn canonical_form_of_a_delete() {
        assert_eq!(
            delete(),
            "DELETE\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Mon, 07 Dec 2026 01:00:00 GMT\nx-ms-version:2021-12-02\n\
             /devstoreaccount1/devstoreaccount1/acs-events/messages/0b2c7e0c-1b9a-4a57-9b3e-5c8f9b2d1a00\n\
             popreceipt:AgAAAAMAAAAAAAAA+/w="
        );
    }

    #[test]
    fn canonical_form_of_a_put_with_repeated_and_mixed_case_parameters() {
        let signed = string_to_sign(&Canonical {
            method: "POST",
            content_length: 71,
            content_type: "application/xml",
            ms_headers: &[("x-ms-version", "2021-12-02"), ("x-ms-date", "d")],
            account: "acct",
            path: "/q/messages",
            query: &[("VisibilityTimeout", "0"), ("b", "2"), ("b", "1")],
        });
        assert_eq!(
            signed,
            "POST\n\n\n71\n\napplication/xml\n\n\n\n\n\n\nx-ms-date:d\nx-ms-version:2021-12-02\n/acct/q/messages\nb:1,2\n\
             visibilitytimeout:0"
        );
    }

    #[test]
    fn known_signature_of_the_delete() {
        // Computed apart from this crate with OpenSSL (tests/vectors/queue/README.md).
        let key = hmac_key(&AccessKey::from_base64(AZURITE_KEY).unwrap());
        assert_eq!(
            authorization(&key, "devstoreaccount1", &delete()),
            include_str!("../../../tests/vectors/queue/shared_key_delete.txt").trim()
        );
    }
}
