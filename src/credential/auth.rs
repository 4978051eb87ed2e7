//! [`Credential`]: how requests to an ACS resource authenticate, whichever the kind.

use std::fmt;

use super::{AccessKey, ConnectionString, Endpoint};

/// How requests to an ACS resource authenticate, with the resource's endpoint: what the `Recorder` (feature
/// `recorder`) builds its signing layer from, whichever the credential, so that its type stays the same.
///
/// A [`ConnectionString`] converts into the access-key variant:
///
/// ```
/// use acs_recording::credential::{ConnectionString, Credential};
///
/// let cs: ConnectionString = "endpoint=https://contoso.communication.azure.com/;accesskey=cHc9PQ==".parse()?;
/// let credential = Credential::from(&cs);
/// assert_eq!(credential.endpoint().authority(), "contoso.communication.azure.com");
/// assert!(!format!("{credential:?}").contains("cHc9PQ=="));
/// # Ok::<(), acs_recording::credential::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum Credential {
    /// An access key: every request is signed with HMAC-SHA256 (the `HmacSigningLayer`).
    AccessKey {
        /// The resource's endpoint.
        endpoint: Endpoint,
        /// Its access key.
        key: AccessKey,
    },
    /// A Microsoft Entra ID identity: every request carries a bearer token of `credential` (the
    /// `BearerTokenLayer`, feature `entra`).
    #[cfg(feature = "entra")]
    Entra {
        /// The resource's endpoint.
        endpoint: Endpoint,
        /// Any `azure_identity` credential.
        credential: std::sync::Arc<dyn azure_core::credentials::TokenCredential>,
        /// The scope tokens are asked for; `None` for ACS's, `https://communication.azure.com//.default`.
        scope: Option<String>,
        /// How long before its expiry a cached token is replaced; `None` for 5 minutes.
        refresh_before: Option<std::time::Duration>,
    },
}

impl Credential {
    /// An access key for the resource at `endpoint`.
    pub fn access_key(endpoint: Endpoint, key: AccessKey) -> Self {
        Self::AccessKey { endpoint, key }
    }

    /// A Microsoft Entra ID identity for the resource at `endpoint` (feature `entra`).
    #[cfg(feature = "entra")]
    pub fn entra(endpoint: Endpoint, credential: std::sync::Arc<dyn azure_core::credentials::TokenCredential>) -> Self {
        Self::Entra { endpoint, credential, scope: None, refresh_before: None }
    }

    /// The endpoint of the resource.
    pub fn endpoint(&self) -> &Endpoint {
        match self {
            Self::AccessKey { endpoint, .. } => endpoint,
            #[cfg(feature = "entra")]
            Self::Entra { endpoint, .. } => endpoint,
        }
    }
}

impl From<ConnectionString> for Credential {
    fn from(connection_string: ConnectionString) -> Self {
        let (endpoint, key) = connection_string.into_parts();
        Self::AccessKey { endpoint, key }
    }
}

impl From<&ConnectionString> for Credential {
    fn from(connection_string: &ConnectionString) -> Self {
        Self::access_key(connection_string.endpoint().clone(), connection_string.access_key().clone())
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AccessKey { endpoint, key } => {
                f.debug_struct("AccessKey").field("endpoint", endpoint).field("key", key).finish()
            }
            #[cfg(feature = "entra")]
            Self::Entra { endpoint, .. } => f.debug_struct("Entra").field("endpoint", endpoint).finish_non_exhaustive(),
        }
    }
}
