use std::fmt;

use super::allow::Refused;
use crate::BoxError;

/// What went wrong while signing or sending a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The destination is neither the endpoint nor on the allow-list; nothing was sent.
    RefusedHost,
    /// The body is larger than the signing buffer limit and carried no precomputed [`ContentHash`].
    ///
    /// [`ContentHash`]: super::ContentHash
    BodyTooLarge,
    /// Reading the request body to hash it failed.
    Body,
    /// The Microsoft Entra credential did not give an access token; nothing was sent.
    Credential,
    /// The inner service failed.
    Inner,
}

/// An error from [`HmacSigner`](super::HmacSigner), [`HmacSigning`](super::HmacSigning) or `BearerToken`. It never
/// contains key material, signatures or tokens. The cause, if any, is the [`source`](std::error::Error::source),
/// never repeated in the message.
pub struct Error(Box<Repr>);

/// What failed, with what each failure carries.
#[derive(Debug)]
enum Repr {
    Refused(Refused),
    BodyTooLarge { limit: usize },
    Body(BoxError),
    Credential(BoxError),
    Inner(BoxError),
}

impl Error {
    pub(crate) fn refused(refused: Refused) -> Self {
        Self(Box::new(Repr::Refused(refused)))
    }

    pub(crate) fn body_too_large(limit: usize) -> Self {
        Self(Box::new(Repr::BodyTooLarge { limit }))
    }

    pub(crate) fn body(source: BoxError) -> Self {
        Self(Box::new(Repr::Body(source)))
    }

    #[cfg_attr(not(feature = "entra"), allow(dead_code))]
    pub(crate) fn credential(source: impl Into<BoxError>) -> Self {
        Self(Box::new(Repr::Credential(source.into())))
    }

    pub(crate) fn inner(source: impl Into<BoxError>) -> Self {
        Self(Box::new(Repr::Inner(source.into())))
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        match &*self.0 {
            Repr::Refused(_) => ErrorKind::RefusedHost,
            Repr::BodyTooLarge { .. } => ErrorKind::BodyTooLarge,
            Repr::Body(_) => ErrorKind::Body,
            Repr::Credential(_) => ErrorKind::Credential,
            Repr::Inner(_) => ErrorKind::Inner,
        }
    }

    /// Whether the destination was refused (the inner service was never called).
    pub fn is_refused(&self) -> bool {
        self.kind() == ErrorKind::RefusedHost
    }

    /// Whether the Entra credential failed to give a token; its error is the
    /// [`source`](std::error::Error::source).
    pub fn is_credential(&self) -> bool {
        self.kind() == ErrorKind::Credential
    }

    /// The refusal, naming the host, when the destination was refused.
    pub fn refusal(&self) -> Option<&Refused> {
        match &*self.0 {
            Repr::Refused(refused) => Some(refused),
            _ => None,
        }
    }

    /// Whether the inner service failed; its error is the [`source`](std::error::Error::source).
    pub fn is_inner(&self) -> bool {
        self.kind() == ErrorKind::Inner
    }

    /// Takes the inner service's error out, when that is what failed.
    pub fn into_inner(self) -> Option<BoxError> {
        match *self.0 {
            Repr::Inner(source) => Some(source),
            _ => None,
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Error").field(&self.0).finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            // The refusal is the source: it says why, this says what was not done.
            Repr::Refused(refused) if refused.host().is_empty() => f.write_str("refused to sign a request"),
            Repr::Refused(refused) => write!(f, "refused to sign a request to `{}`", refused.host()),
            Repr::BodyTooLarge { limit } => write!(
                f,
                "request body exceeds the signing buffer limit of {limit} bytes; attach a precomputed content hash"
            ),
            Repr::Body(_) => f.write_str("reading the request body to hash it failed"),
            Repr::Credential(_) => f.write_str("the credential did not give an access token"),
            Repr::Inner(_) => f.write_str("the inner service failed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.0 {
            Repr::Refused(refused) => Some(refused),
            Repr::BodyTooLarge { .. } => None,
            Repr::Body(source) | Repr::Credential(source) | Repr::Inner(source) => Some(&**source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::AllowList;

    #[test]
    fn errors_are_send_sync_static_and_one_word() {
        fn assert<T: Send + Sync + 'static>() {}
        assert::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn no_message_repeats_its_source() {
        let refused = AllowList::azure_defaults().check(&"https://attacker.example/x".parse().unwrap()).unwrap_err();
        let io = || -> BoxError { Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset)) };
        let errors = [Error::refused(refused), Error::body(io()), Error::credential(io()), Error::inner(io())];
        for error in errors {
            let source = std::error::Error::source(&error).expect("a cause");
            let (message, cause) = (error.to_string(), source.to_string());
            assert!(!message.contains(&cause), "`{message}` repeats `{cause}`");
        }
        assert!(std::error::Error::source(&Error::body_too_large(1)).is_none());
    }

    #[test]
    fn a_refusal_names_the_host_and_keeps_its_reason() {
        let refused = AllowList::azure_defaults().check(&"https://attacker.example/x".parse().unwrap()).unwrap_err();
        let error = Error::refused(refused);
        assert_eq!(error.kind(), ErrorKind::RefusedHost);
        assert_eq!(error.to_string(), "refused to sign a request to `attacker.example`");
        assert_eq!(error.refusal().unwrap().host(), "attacker.example");
        assert!(error.into_inner().is_none());
    }
}
