//! Names made safe for a file system or an object store key, shared by the sinks and the journal.

/// A name made safe for a file system: `[A-Za-z0-9._-]` only, no `..`, no leading `.`, at most 128 characters,
/// never empty.
///
/// ```
/// use acs_recording::download::sink::sanitize_name;
/// assert_eq!(sanitize_name("../../etc/passwd"), "______etc_passwd");
/// assert_eq!(sanitize_name("a b\u{0}c"), "a_b_c");
/// assert_eq!(sanitize_name(""), "_");
/// ```
pub fn sanitize_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .take(128)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    while out.contains("..") {
        out = out.replace("..", "__");
    }
    if out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitized_names_stay_inside_the_folder() {
        let table = [
            ("0-eus-d2-3cca2175891f21c6c9a5975a12c0141c", "0-eus-d2-3cca2175891f21c6c9a5975a12c0141c"),
            ("..", "__"),
            ("...", "__."),
            (".hidden", "_hidden"),
            ("a/b\\c", "a_b_c"),
            ("x\ny\tz", "x_y_z"),
            ("é", "_"),
            ("", "_"),
        ];
        for (input, expected) in table {
            assert_eq!(sanitize_name(input), expected, "{input:?}");
        }
        assert_eq!(sanitize_name(&"a".repeat(500)).len(), 128);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sanitised_names_never_leave_their_folder(name in "\\PC{0,200}") {
            let safe = sanitize_name(&name);
            prop_assert!(!safe.is_empty() && safe.len() <= 128);
            prop_assert!(!safe.starts_with('.') && !safe.contains(".."));
            prop_assert!(safe.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')));
            let root = std::path::Path::new("/recordings");
            let joined = root.join(&safe);
            prop_assert_eq!(joined.parent(), Some(root));
        }
    }
}
