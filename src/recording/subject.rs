//! [`RecordingSubject`]: the ids in a recording event's subject, in its three forms.

/// The ids in a recording event's subject.
///
/// Three forms exist, of different ages of the service: `/recording/call/{callId}/serverCallId/{serverCallId}/recordingId/{recordingId}`,
/// the older `/recording/call/{callId}/recordingId/{recordingId}`, and the 2021 `/recording/call/{callId}`.
///
/// ```
/// use acs_recording::recording::RecordingSubject;
///
/// let s = RecordingSubject::parse("/recording/call/c1/serverCallId/aGk/recordingId/r1").unwrap();
/// assert_eq!((s.call_id(), s.server_call_id(), s.recording_id()), ("c1", Some("aGk"), Some("r1")));
/// assert!(RecordingSubject::parse("/chat/thread/1").is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RecordingSubject {
    call_id: String,
    server_call_id: Option<String>,
    recording_id: Option<String>,
}

impl RecordingSubject {
    /// Parses a subject; `None` when it is not a recording subject or an id is empty.
    pub fn parse(subject: &str) -> Option<Self> {
        const SERVER_CALL: &str = "/serverCallId/";
        const RECORDING: &str = "/recordingId/";
        let rest = subject.strip_prefix("/recording/call/")?;
        // Server call ids are base64 and may hold `/`, so split on the markers rather than on every `/`.
        let (before_recording, recording_id) = match rest.rfind(RECORDING) {
            Some(at) => (&rest[..at], Some(&rest[at + RECORDING.len()..])),
            None => (rest, None),
        };
        let (call_id, server_call_id) = match before_recording.find(SERVER_CALL) {
            Some(at) => (&before_recording[..at], Some(&before_recording[at + SERVER_CALL.len()..])),
            None => (before_recording, None),
        };
        let non_empty = |id: &str| !id.is_empty();
        if !non_empty(call_id) || call_id.contains('/') || !server_call_id.is_none_or(non_empty) {
            return None;
        }
        if !recording_id.is_none_or(|id| non_empty(id) && !id.contains('/')) {
            return None;
        }
        Some(Self {
            call_id: call_id.to_owned(),
            server_call_id: server_call_id.map(str::to_owned),
            recording_id: recording_id.map(str::to_owned),
        })
    }

    /// The call id.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The server call id, in the newest subject form.
    pub fn server_call_id(&self) -> Option<&str> {
        self.server_call_id.as_deref()
    }

    /// The recording id, absent in the 2021 form.
    pub fn recording_id(&self) -> Option<&str> {
        self.recording_id.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_forms_parse_into_their_ids() {
        type Ids<'a> = (&'a str, Option<&'a str>, Option<&'a str>);
        let cases: [(&str, Option<Ids<'_>>); 9] = [
            ("/recording/call/c1/serverCallId/s1/recordingId/r1", Some(("c1", Some("s1"), Some("r1")))),
            ("/recording/call/c1/serverCallId/a/b+c=/recordingId/r1", Some(("c1", Some("a/b+c="), Some("r1")))),
            ("/recording/call/c1/recordingId/r1", Some(("c1", None, Some("r1")))),
            ("/recording/call/c1", Some(("c1", None, None))),
            ("/recording/call/", None),
            ("/recording/call/c1/recordingId/", None),
            ("/recording/call/c1/serverCallId//recordingId/r1", None),
            ("/recording/call/c1/extra", None),
            ("/chat/thread/1", None),
        ];
        for (subject, expected) in cases {
            let parsed = RecordingSubject::parse(subject);
            let got = parsed.as_ref().map(|s| (s.call_id(), s.server_call_id(), s.recording_id()));
            assert_eq!(got, expected, "{subject}");
        }
    }
}
