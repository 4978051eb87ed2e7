//! How a fetch takes an answer apart: a 200 (the whole object, or Range ignored), a 206 (the range asked for, of
//! the pinned version) and a 416.

use http::header::CONTENT_RANGE;
use http::{HeaderMap, Response};

use super::{Fetch, OpenResponse};
use crate::client::{HttpClient, RequestBody};
use crate::download::error::Error;
use crate::download::header::{blob_md5, content_length, content_md5, parse_content_range};
use crate::download::retry::Failure;
use crate::download::sink::ObjectVersion;

impl<S: HttpClient<B>, B: RequestBody> Fetch<S, B> {
    pub(super) async fn range_not_satisfiable(&mut self, headers: &HeaderMap) -> Result<(), Error> {
        if self.offset == 0 && !self.no_range {
            // An empty object has no byte 0, so it cannot satisfy `bytes=0-`: ask again without Range.
            self.no_range = true;
            return Ok(());
        }
        let total = headers
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().strip_prefix("bytes */"))
            .and_then(|t| t.parse::<u64>().ok());
        if self.offset > 0 && total == Some(self.offset) && self.version.is_some() {
            // Preconditions come before Range (RFC 9110 §13.2.2): the pinned version is intact and every byte of
            // it is already stored.
            self.done = true;
            return Ok(());
        }
        let size_unknown = self.version.as_ref().is_some_and(|v| v.total.is_none() && v.is_pinnable());
        if self.offset > 0 && size_unknown && total.is_none_or(|total| total == self.offset) {
            // Ranges of unknown total end here: the pinned version (its precondition passed) has no byte at the
            // offset, so every byte of it is stored.
            self.done = true;
            return Ok(());
        }
        self.restart();
        self.failed(Failure::BadRange("416 Range Not Satisfiable".to_owned()), None).await
    }

    /// A 200: the whole object from byte 0.
    pub(super) fn accept_full(&mut self, response: Response<S::ResponseBody>) -> Result<(), Error> {
        let (parts, body) = response.into_parts();
        let fresh = ObjectVersion::from_headers(&parts.headers, content_length(&parts.headers));
        if self.is_part() {
            // A part never pins another version: the whole object it belongs to would be spliced.
            let same = matches!((&self.version, &fresh.etag), (Some(pinned), Some(etag))
                if pinned.etag.as_deref() == Some(etag.as_str()) && !etag.starts_with("W/"))
                && self.total().is_some()
                && self.total() == fresh.total;
            if !same {
                self.restart();
                return Ok(());
            }
            let md5 = content_md5(&parts.headers);
            self.response = Some(OpenResponse::new(body, self.offset, fresh.total, false, md5));
            return Ok(());
        }
        if self.offset > 0 {
            // The server ignored Range, as a server may: drop the bytes already stored, but only for the very same version,
            // and only when the whole object's MD5 can still be checked.
            let same = matches!((&self.version, &fresh.etag), (Some(pinned), Some(etag))
                if pinned.etag.as_deref() == Some(etag.as_str()) && !etag.starts_with("W/"))
                && self.total().is_some()
                && self.total() == fresh.total
                && self.blob_md5_allows_resume(&parts.headers);
            if same {
                let md5 = content_md5(&parts.headers);
                self.response = Some(OpenResponse::new(body, self.offset, fresh.total, false, md5));
                return Ok(());
            }
            self.restart();
        }
        self.pin(fresh);
        let md5 = content_md5(&parts.headers);
        self.response = Some(OpenResponse::new(body, 0, self.total(), false, md5));
        Ok(())
    }

    /// A 206: must continue exactly where we are, of the pinned version.
    pub(super) async fn accept_partial(&mut self, response: Response<S::ResponseBody>) -> Result<(), Error> {
        let (parts, body) = response.into_parts();
        let range = parts.headers.get(CONTENT_RANGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let Some((first, last, total)) = parse_content_range(range) else {
            return self.failed(Failure::BadRange(format!("206 with an invalid Content-Range `{range}`")), None).await;
        };
        if first != self.offset {
            let why = format!("Content-Range `{range}` does not start at byte {}", self.offset);
            return self.failed(Failure::BadRange(why), None).await;
        }
        // `parse_content_range` keeps `last` below u64::MAX; checked anyway, as the header is the server's.
        let (Some(length), Some(end)) = ((last - first).checked_add(1), last.checked_add(1)) else {
            return self.failed(Failure::BadRange(format!("206 with an invalid Content-Range `{range}`")), None).await;
        };
        if content_length(&parts.headers).is_some_and(|declared| declared != length) {
            let why = format!("Content-Length does not match Content-Range `{range}`");
            return self.failed(Failure::BadRange(why), None).await;
        }
        let fresh = ObjectVersion::from_headers(&parts.headers, total);
        if let Some(pinned) = &self.version {
            let etag_changed = matches!((&pinned.etag, &fresh.etag), (Some(a), Some(b)) if a != b);
            let total_changed = matches!((pinned.total, total), (Some(a), Some(b)) if a != b);
            let md5_changed = matches!((self.blob_md5, blob_md5(&parts.headers)), (Some(a), Some(b)) if a != b);
            if etag_changed || total_changed || md5_changed {
                self.restart();
                let why = "a different ETag, size or x-ms-blob-content-md5 than the first response";
                return self.failed(Failure::Changed(why), None).await;
            }
        }
        if self.offset == 0 && !self.is_part() {
            self.pin(fresh);
        } else if !self.is_part() && !self.blob_md5_allows_resume(&parts.headers) {
            // The stored bytes were never hashed into an MD5 (an earlier run, or a first response without the
            // header): start over rather than skip the check. Once is no failure of the server; again means it
            // announces the MD5 only after byte 0, and counting it keeps such a server from looping forever.
            self.restart();
            if std::mem::replace(&mut self.restarted_for_md5, true) {
                return self.failed(Failure::Changed("x-ms-blob-content-md5 announced only after byte 0"), None).await;
            }
            tracing::info!("the whole object's MD5 is announced: restarting from byte 0 to check it");
            return Ok(());
        }
        if let (Some(pinned), Some(total)) = (self.version.as_mut(), total) {
            // A size first left as `*` and told now: the object ends there, not at the end of this range.
            pinned.total.get_or_insert(total);
        }
        let total_unknown = total.is_none() && self.total().is_none();
        let md5 = content_md5(&parts.headers);
        self.response = Some(OpenResponse::new(body, 0, Some(end), total_unknown, md5));
        Ok(())
    }

    /// Whether a response continuing after the stored bytes keeps the whole-object MD5 check possible: it announces
    /// none, or the very one being computed.
    fn blob_md5_allows_resume(&self, headers: &HeaderMap) -> bool {
        match (self.blob_md5, blob_md5(headers)) {
            (_, None) => true,
            (Some(pinned), Some(announced)) => pinned == announced,
            (None, Some(_)) => false,
        }
    }
}
