//! The two validation handshakes: the Event Grid schema's `SubscriptionValidation` and the CloudEvents `OPTIONS`.

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use super::config::Config;
use super::error::{Error, ErrorKind};

/// `WebHook-Request-Origin`, sent with the CloudEvents `OPTIONS` handshake.
pub(crate) const WEBHOOK_REQUEST_ORIGIN: HeaderName = HeaderName::from_static("webhook-request-origin");
/// `WebHook-Request-Rate`, the rate a CloudEvents sender asks for.
pub(crate) const WEBHOOK_REQUEST_RATE: HeaderName = HeaderName::from_static("webhook-request-rate");
/// `WebHook-Allowed-Origin`, the grant.
pub(crate) const WEBHOOK_ALLOWED_ORIGIN: HeaderName = HeaderName::from_static("webhook-allowed-origin");
/// `WebHook-Allowed-Rate`, the granted rate.
pub(crate) const WEBHOOK_ALLOWED_RATE: HeaderName = HeaderName::from_static("webhook-allowed-rate");
/// `aeg-event-type`: `Notification`, `SubscriptionValidation` or `SubscriptionDeletion`.
pub(crate) const AEG_EVENT_TYPE: HeaderName = HeaderName::from_static("aeg-event-type");
/// `aeg-delivery-count`: how many times this delivery was attempted before.
pub(crate) const AEG_DELIVERY_COUNT: HeaderName = HeaderName::from_static("aeg-delivery-count");
/// `aeg-subscription-name`: the Event Grid subscription.
pub(crate) const AEG_SUBSCRIPTION_NAME: HeaderName = HeaderName::from_static("aeg-subscription-name");

/// The CloudEvents abuse-protection handshake: grant an allowed origin, refuse any other with 403.
pub(crate) fn options_response(headers: &HeaderMap, origin: &HeaderValue, config: &Config) -> Response<Bytes> {
    let allowed = origin.to_str().is_ok_and(|origin| {
        let origin = origin.trim();
        config.allowed_origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin))
    });
    if !allowed {
        let shown = String::from_utf8_lossy(origin.as_bytes());
        return Error::new(ErrorKind::OriginNotAllowed, format!("webhook origin `{shown}` is not allowed"))
            .to_response();
    }
    let mut response = Response::new(Bytes::new());
    let response_headers = response.headers_mut();
    response_headers.insert(WEBHOOK_ALLOWED_ORIGIN, origin.clone());
    if headers.contains_key(WEBHOOK_REQUEST_RATE) {
        let rate = match config.allowed_rate {
            Some(rate) => HeaderValue::from(rate),
            None => HeaderValue::from_static("*"),
        };
        response_headers.insert(WEBHOOK_ALLOWED_RATE, rate);
    }
    response_headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// The Event Grid schema's handshake answer: 200 with `{"validationResponse":"<code>"}`.
pub(crate) fn validation_response(code: &str) -> Response<Bytes> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ValidationResponse<'a> {
        validation_response: &'a str,
    }
    // Serialising a single string field cannot fail.
    let body = serde_json::to_vec(&ValidationResponse { validation_response: code }).unwrap_or_default();
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Whether `aeg-event-type` names this handshake, ignoring case.
pub(crate) fn aeg_event_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers.get(AEG_EVENT_TYPE).is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aeg_event_type_is_matched_ignoring_case_and_only_whole() {
        let cases: [(&[u8], bool); 5] = [
            (b"SubscriptionValidation", true),
            (b"subscriptionvalidation", true),
            (b"Notification", false),
            (b"SubscriptionValidation ", false),
            (b"Subscription\xe9alidation", false),
        ];
        for (value, expected) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(AEG_EVENT_TYPE, HeaderValue::from_bytes(value).unwrap());
            assert_eq!(aeg_event_type_is(&headers, "SubscriptionValidation"), expected, "{value:?}");
        }
        assert!(!aeg_event_type_is(&HeaderMap::new(), "SubscriptionValidation"));
    }
}
