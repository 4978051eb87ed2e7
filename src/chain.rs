//! An error and its causes on one line: for logs, journal records and problem documents.

use std::error::Error;

/// `error`'s message followed by each cause's, separated by `": "`. The crate's errors never carry secrets or query
/// strings, and none repeats its source in its own message, so the line says each thing once.
pub(crate) fn one_line(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::io;

    #[test]
    fn causes_follow_the_message() {
        let error = Wrapped(io::Error::other("disk full"));
        assert_eq!(super::one_line(&error), "cannot write: disk full");
    }

    #[derive(Debug)]
    struct Wrapped(io::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("cannot write")
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
}
