//! The answers of the recording operations: JSON bodies, Call Automation's error shape, and the replay of a
//! repeated request.

use std::collections::HashMap;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, Response, StatusCode};

use crate::calling::{ErrorResponse, REPEATABILITY_REQUEST_ID};
use crate::emulator::StorageBody;
use crate::signing::VerifyRejection;

/// The header telling the client the request was carried out (once).
const REPEATABILITY_RESULT: &str = "repeatability-result";

/// An answer kept to replay it: status and body.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    /// `None` for an answer without a body (202, 204).
    pub(crate) json: Option<Bytes>,
}

impl Reply {
    /// A 200 with this JSON.
    pub(crate) fn json(body: Bytes) -> Self {
        Self { status: StatusCode::OK, json: Some(body) }
    }

    /// A status without a body.
    pub(crate) fn empty(status: StatusCode) -> Self {
        Self { status, json: None }
    }

    /// The HTTP answer; a repeatable request also gets `Repeatability-Result: accepted`.
    pub(crate) fn into_response(self, repeatable: bool) -> Response<StorageBody> {
        let mut response = match self.json {
            Some(body) => {
                let mut response = Response::new(StorageBody::full(body));
                response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }
            None => Response::new(StorageBody::empty()),
        };
        *response.status_mut() = self.status;
        if repeatable {
            response.headers_mut().insert(REPEATABILITY_RESULT, HeaderValue::from_static("accepted"));
        }
        response
    }
}

/// A refused request: the status, and the code and message of Call Automation's error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl Refusal {
    /// The answer: the status and `{"error":{"code","message"}}`.
    pub(crate) fn into_response(self) -> Response<StorageBody> {
        let body = ErrorResponse::new(self.code, self.message);
        let body = serde_json::to_vec(&body).expect("an error body serializes");
        Reply { status: self.status, json: Some(Bytes::from(body)) }.into_response(false)
    }
}

/// A refusal with this status, code and message.
pub(crate) fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { status, code, message: message.into() }
}

/// The answers of repeatable requests, by `Repeatability-Request-ID`.
#[derive(Debug, Default)]
pub(crate) struct Replies {
    by_id: HashMap<String, Reply>,
}

impl Replies {
    /// The answer already given to this request id, if any.
    pub(crate) fn get(&self, request_id: &str) -> Option<Reply> {
        self.by_id.get(request_id).cloned()
    }

    /// Keeps the answer given to a request id; only successes are kept, so that a request that failed (a 409 on a
    /// state that has since changed) may be sent again and carried out.
    pub(crate) fn keep(&mut self, request_id: String, reply: &Reply) {
        if reply.status.is_success() {
            self.by_id.insert(request_id, reply.clone());
        }
    }
}

/// The request id of a repeatable request.
pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    headers.get(REPEATABILITY_REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// A 401 of the signature verifier or of the bearer check in Call Automation's error shape, its reason and
/// challenge kept.
pub(crate) fn unauthorized<B>(refusal: &Response<B>) -> Response<StorageBody> {
    let message = match refusal.extensions().get::<VerifyRejection>() {
        Some(rejection) => rejection.to_string(),
        None => "the bearer token is not accepted".to_owned(),
    };
    let mut response = error(StatusCode::UNAUTHORIZED, "Unauthorized", message).into_response();
    if let Some(challenge) = refusal.headers().get(WWW_AUTHENTICATE) {
        response.headers_mut().insert(WWW_AUTHENTICATE, challenge.clone());
    }
    response
}
