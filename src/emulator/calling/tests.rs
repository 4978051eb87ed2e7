use super::*;

#[test]
fn routes_name_the_operation_and_the_decoded_recording_id() {
    let name = |path: &str| match route(path) {
        Some(Route::Start) => "start".to_owned(),
        Some(Route::Recording(id)) => format!("recording {id}"),
        Some(Route::Pause(id)) => format!("pause {id}"),
        Some(Route::Resume(id)) => format!("resume {id}"),
        None => "none".to_owned(),
    };
    let table = [
        ("/calling/recordings", "start"),
        ("/calling/recordings/eyJQ", "recording eyJQ"),
        ("/calling/recordings/eyJQ%3D%3D", "recording eyJQ=="),
        ("/calling/recordings/eyJQ:pause", "pause eyJQ"),
        ("/calling/recordings/eyJQ:resume", "resume eyJQ"),
        ("/calling/recordings/eyJQ:stop", "none"),
        ("/calling/recordings/", "none"),
        ("/calling/recordings/a/b", "none"),
        ("/calling/recordingsx", "none"),
        ("/calling/callConnections", "none"),
    ];
    for (path, expected) in table {
        assert_eq!(name(path), expected, "{path}");
    }
}

#[test]
fn the_api_version_must_be_present_and_shaped_like_a_date() {
    let status = |query: &str| {
        let uri: Uri = format!("/calling/recordings{query}").parse().unwrap();
        match check_api_version(&uri) {
            Ok(()) => 200,
            Err(refusal) => refusal.status.as_u16(),
        }
    };
    let table = [
        ("?api-version=2024-09-15", 200),
        ("?x=1&api-version=2025-06-15", 200),
        ("?api-version=2025-03-01-preview", 200),
        ("", 400),
        ("?api-version=", 400),
        ("?api-version=latest", 400),
        ("?api-version=2024-9-15", 400),
    ];
    for (query, expected) in table {
        assert_eq!(status(query), expected, "{query:?}");
    }
}

#[test]
fn recording_ids_need_no_escaping_in_a_path() {
    for _ in 0..100 {
        let id = new_recording_id();
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(&b)), "{id}");
        assert!(id.starts_with("eyJQbGF0Zm9ybUVuZHBvaW50SWQiOi"), "{id}");
    }
}
