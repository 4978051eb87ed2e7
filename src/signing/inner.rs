//! What every middleware of this module does with its inner service.

/// Moves the ready inner service out for the response future and leaves a clone in its place.
///
/// `poll_ready` readied `inner`, not its clones: the request must go to that one, and the service keeps a fresh clone
/// that its next `poll_ready` will ready in turn.
pub(crate) fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}

/// `get_ref`, `get_mut` and `into_inner` for a middleware whose inner service is its field `inner`.
macro_rules! inner_service_accessors {
    () => {
        /// The wrapped service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The wrapped service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Unwraps the inner service.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

pub(crate) use inner_service_accessors;
