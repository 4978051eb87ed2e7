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
