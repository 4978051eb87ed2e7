//! What every middleware of the crate does with its inner service.

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

#[cfg(test)]
mod tests {
    use tower::Layer;

    use crate::credential::{AccessKey, Endpoint};
    use crate::signing::{HmacSigningLayer, HmacVerifyLayer};

    #[test]
    fn every_middleware_lends_and_returns_its_inner_service() {
        let key = AccessKey::from_bytes(b"k".to_vec());
        let endpoint = Endpoint::parse("https://contoso.communication.azure.com/").unwrap();
        let mut signing = HmacSigningLayer::new(endpoint, key.clone()).layer(1_u8);
        *signing.get_mut() += 1;
        assert_eq!((*signing.get_ref(), signing.into_inner()), (2, 2));
        let mut verify = HmacVerifyLayer::new(key, "contoso.communication.azure.com").layer(1_u8);
        *verify.get_mut() += 1;
        assert_eq!((*verify.get_ref(), verify.into_inner()), (2, 2));
    }
}
