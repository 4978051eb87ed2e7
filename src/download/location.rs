//! Where a chunk's media and metadata are fetched from, and which destinations may be asked. Locations come from
//! an event, which anyone who can reach the webhook could forge: only the ACS endpoint and the allow-listed hosts
//! are ever asked, for the first request as for every redirect.

use http::Uri;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::error::{Detail, Error, ErrorKind, Location, Scope};
use crate::credential::Endpoint;
use crate::recording::RecordingChunk;
use crate::redact::redact_url;
use crate::signing::AllowList;

/// The `api-version` of the legacy download URLs of the original quickstart.
pub const LEGACY_API_VERSION: &str = "2021-04-15-preview1";

/// Everything but the RFC 3986 unreserved characters is encoded, so a document id is exactly one path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The legacy media URL: `{endpoint}/recording/download/{documentId}?api-version=2021-04-15-preview1`, with the
/// document id percent-encoded as one path segment.
///
/// ```
/// use acs_recording::credential::Endpoint;
/// use acs_recording::download::legacy_content_location;
///
/// let endpoint = Endpoint::parse("https://contoso.communication.azure.com/")?;
/// assert_eq!(
///     legacy_content_location(&endpoint, "0-eus-d1/../x y"),
///     "https://contoso.communication.azure.com/recording/download/0-eus-d1%2F..%2Fx%20y?api-version=2021-04-15-preview1"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn legacy_content_location(endpoint: &Endpoint, document_id: &str) -> String {
    format!("{}recording/download/{}?api-version={LEGACY_API_VERSION}", endpoint.url(), encode_segment(document_id))
}

/// The legacy metadata URL: `{endpoint}/recording/download/{documentId}/metadata?api-version=...`.
pub fn legacy_metadata_location(endpoint: &Endpoint, document_id: &str) -> String {
    format!(
        "{}recording/download/{}/metadata?api-version={LEGACY_API_VERSION}",
        endpoint.url(),
        encode_segment(document_id)
    )
}

fn encode_segment(segment: &str) -> String {
    // `.` and `..` are unreserved but would be dot-segments: encode them so they stay a plain id.
    match segment {
        "." => "%2E".to_owned(),
        ".." => "%2E%2E".to_owned(),
        _ => utf8_percent_encode(segment, SEGMENT).to_string(),
    }
}

/// The destinations the downloader may ask: the endpoint and the allow-list.
#[derive(Debug, Clone)]
pub(crate) struct Destinations {
    pub(crate) endpoint: Option<Endpoint>,
    pub(crate) allow: AllowList,
}

impl Destinations {
    /// Resolves and checks one of a chunk's locations; `Ok(None)` for a missing delete location.
    pub(crate) fn locate(&self, chunk: &RecordingChunk, which: Location) -> Result<Option<Uri>, Error> {
        let given = match which {
            Location::Content => chunk.content_location(),
            Location::Metadata => chunk.metadata_location(),
            Location::Delete => chunk.delete_location(),
        };
        let scope = Scope::chunk(chunk.index(), chunk.document_id()).at(which);
        let invalid = |detail| Error::new(ErrorKind::InvalidLocation, detail).in_scope(&scope);
        let text = match (given, which, &self.endpoint) {
            (Some(url), _, _) => url.to_owned(),
            (None, Location::Delete, _) => return Ok(None),
            (None, Location::Content, Some(endpoint)) => legacy_content_location(endpoint, chunk.document_id()),
            (None, Location::Metadata, Some(endpoint)) => legacy_metadata_location(endpoint, chunk.document_id()),
            (None, _, None) => return Err(invalid(Detail::MissingWithoutEndpoint)),
        };
        let uri: Uri = text.parse().map_err(|_| invalid(Detail::NotUrl(redact_url(&text).into())))?;
        if uri.scheme().is_none() || uri.authority().is_none() {
            return Err(invalid(Detail::NotAbsolute(redact_url(&text).into())));
        }
        self.check(&uri).map_err(|refused| Error::refused(&scope, refused))?;
        Ok(Some(uri))
    }

    /// The guard against requests to hosts an event names (server-side request forgery): the endpoint itself, or
    /// a destination on the allow-list.
    pub(crate) fn check(&self, uri: &Uri) -> Result<(), crate::signing::Refused> {
        if let Some(endpoint) = &self.endpoint {
            if AllowList::is_endpoint(endpoint, uri) {
                return Ok(());
            }
        }
        self.allow.check(uri)
    }

    /// Resolves a redirect's `Location` against the URL that answered it, then checks it.
    pub(crate) fn redirect(&self, from: &Uri, location: &str, scope: &Scope) -> Result<Uri, Error> {
        let invalid = || {
            Error::new(ErrorKind::Redirect, Detail::InvalidRedirect(redact_url(location).into()))
                .in_scope(scope)
                .with_host_of(from)
        };
        let target: Uri = if location.starts_with('/') && !location.starts_with("//") {
            let (Some(scheme), Some(authority)) = (from.scheme(), from.authority()) else {
                return Err(invalid());
            };
            Uri::builder()
                .scheme(scheme.clone())
                .authority(authority.clone())
                .path_and_query(location)
                .build()
                .map_err(|_| invalid())?
        } else {
            location.parse().map_err(|_| invalid())?
        };
        if target.scheme().is_none() || target.authority().is_none() {
            return Err(invalid());
        }
        self.check(&target).map_err(|refused| {
            Error::new(ErrorKind::Redirect, Detail::RefusedRedirect)
                .in_scope(scope)
                .with_host(refused.host())
                .with_source(refused)
        })?;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::download::error::chain_text;

    fn destinations() -> Destinations {
        Destinations {
            endpoint: Some(Endpoint::parse("https://contoso.communication.azure.com").unwrap()),
            allow: AllowList::azure_defaults(),
        }
    }

    #[test]
    fn legacy_locations_encode_the_document_id_as_one_segment() {
        let endpoint = Endpoint::parse("http://127.0.0.1:4000/").unwrap();
        let table = [
            ("abc-123_x.y~z", "abc-123_x.y~z"),
            ("a/b", "a%2Fb"),
            ("..", "%2E%2E"),
            (".", "%2E"),
            ("a?b#c", "a%3Fb%23c"),
            ("é", "%C3%A9"),
        ];
        for (id, encoded) in table {
            assert_eq!(
                legacy_content_location(&endpoint, id),
                format!("http://127.0.0.1:4000/recording/download/{encoded}?api-version=2021-04-15-preview1")
            );
            assert_eq!(
                legacy_metadata_location(&endpoint, id),
                format!("http://127.0.0.1:4000/recording/download/{encoded}/metadata?api-version=2021-04-15-preview1")
            );
        }
    }

    #[test]
    fn given_locations_win_over_legacy_ones() {
        let chunk = RecordingChunk::new("doc", 0)
            .with_content_location("https://eu.asm.skype.com/v1/objects/doc/content/audio");
        let d = destinations();
        assert_eq!(
            d.locate(&chunk, Location::Content).unwrap().unwrap().to_string(),
            "https://eu.asm.skype.com/v1/objects/doc/content/audio"
        );
        assert_eq!(
            d.locate(&chunk, Location::Metadata).unwrap().unwrap().to_string(),
            "https://contoso.communication.azure.com/recording/download/doc/metadata?api-version=2021-04-15-preview1"
        );
        assert_eq!(d.locate(&chunk, Location::Delete).unwrap(), None);
    }

    #[test]
    fn refused_locations_name_the_host() {
        let chunk = RecordingChunk::new("doc", 3).with_content_location("https://evil.example/x");
        let error = destinations().locate(&chunk, Location::Content).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::RefusedHost);
        assert_eq!(error.to_string(), "chunk 3 (`doc`) content: location on refused host `evil.example`");
        assert_eq!((error.host(), error.location()), (Some("evil.example"), Some(Location::Content)));
        crate::download::error::assert_no_repeats(&error);
    }

    #[test]
    fn relative_or_missing_locations_are_invalid() {
        let chunk = RecordingChunk::new("doc", 0).with_content_location("/v1/objects/doc");
        assert_eq!(destinations().locate(&chunk, Location::Content).unwrap_err().kind(), ErrorKind::InvalidLocation);
        let d = Destinations { endpoint: None, allow: AllowList::azure_defaults() };
        let error = d.locate(&RecordingChunk::new("doc", 0), Location::Content).unwrap_err();
        assert_eq!(
            error.to_string(),
            "chunk 0 (`doc`) content: location is missing and no endpoint is configured to build it"
        );
    }

    fn scope() -> Scope {
        Scope::chunk(0, "x").at(Location::Content)
    }

    #[test]
    fn locations_and_redirects_never_show_their_query_in_errors() {
        let d = destinations();
        for location in [
            "https://eu.asm.skype.com/v1/objects/d e?sig=SECRET",
            "/v1/objects/d?sig=SECRET",
            "https://evil.example/x?sig=SECRET",
            "https://user:SECRET@eu.asm.skype.com/x",
        ] {
            let chunk = RecordingChunk::new("doc", 0).with_content_location(location);
            let error = d.locate(&chunk, Location::Content).unwrap_err();
            let text = chain_text(&error);
            assert!(!text.contains("SECRET"), "{text}");
        }
        let error = d
            .locate(
                &RecordingChunk::new("doc", 0).with_content_location("https://eu.asm.skype.com/d e?sig=SECRET"),
                Location::Content,
            )
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "chunk 0 (`doc`) content: location `https://eu.asm.skype.com/d e?…` is not a valid URL"
        );

        let from: Uri = "https://eu.asm.skype.com/a?sig=FIRST".parse().unwrap();
        for location in [
            "https://eu.asm.skype.com/b c?sig=SECRET",
            "https://evil.example/b?sig=SECRET",
            "//evil.example/b?sig=SECRET",
        ] {
            let error = d.redirect(&from, location, &scope()).unwrap_err();
            let text = chain_text(&error);
            assert!(!text.contains("SECRET") && !text.contains("FIRST"), "{text}");
        }
        let error = d.redirect(&from, "https://eu.asm.skype.com/b c?sig=SECRET", &scope()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "chunk 0 (`x`) content: redirect to `https://eu.asm.skype.com/b c?…` is not a valid URL"
        );
    }

    #[test]
    fn redirects_resolve_and_are_checked() {
        let d = destinations();
        let from: Uri = "https://eu.asm.skype.com/a".parse().unwrap();
        assert_eq!(d.redirect(&from, "/b?c", &scope()).unwrap().to_string(), "https://eu.asm.skype.com/b?c");
        let error = d.redirect(&from, "https://evil.example/b", &scope()).unwrap_err();
        assert_eq!(error.to_string(), "chunk 0 (`x`) content: refused to follow a redirect to host `evil.example`");
        crate::download::error::assert_no_repeats(&error);
        assert_eq!(d.redirect(&from, "//evil.example/b", &scope()).unwrap_err().kind(), ErrorKind::Redirect);
    }
}
