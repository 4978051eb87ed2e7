//! How queue requests authenticate: Shared Key with the account key, a SAS in the URL, or a Microsoft Entra token.

use std::fmt;
#[cfg(feature = "entra")]
use std::sync::Arc;

#[cfg(feature = "entra")]
use azure_core::credentials::TokenCredential;
use http::{HeaderValue, Request};

use super::error::{Error, ErrorKind};
use super::shared_key::{self, Canonical};
use crate::credential::AccessKey;
use crate::signing::HmacKey;

/// The scope of Microsoft Entra tokens for Azure Storage.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// What a queue client authenticates with.
#[non_exhaustive]
pub enum QueueCredential {
    /// Shared Key: each request signed with the storage account's key (`AZURE_STORAGE_ACCOUNT_KEY`).
    AccountKey(AccessKey),
    /// The shared access signature in the queue URL; nothing is added to requests.
    Sas,
    /// A Microsoft Entra ID token for [`STORAGE_SCOPE`] (the identity needs the Storage Queue Data Message
    /// Processor role, and Message Sender for the poison queue).
    #[cfg(feature = "entra")]
    Entra(Arc<dyn TokenCredential>),
}

impl fmt::Debug for QueueCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AccountKey(_) => "AccountKey(<redacted>)",
            Self::Sas => "Sas",
            #[cfg(feature = "entra")]
            Self::Entra(_) => "Entra",
        })
    }
}

/// A credential prepared for signing.
pub(crate) enum Auth {
    Key(HmacKey),
    Sas,
    #[cfg(feature = "entra")]
    Entra(Arc<crate::signing::TokenCache>),
}

impl Auth {
    pub(crate) fn new(credential: QueueCredential) -> Self {
        match credential {
            QueueCredential::AccountKey(key) => Self::Key(shared_key::hmac_key(&key)),
            QueueCredential::Sas => Self::Sas,
            #[cfg(feature = "entra")]
            QueueCredential::Entra(credential) => Self::Entra(Arc::new(crate::signing::TokenCache::new(
                credential,
                STORAGE_SCOPE.to_owned(),
                crate::signing::DEFAULT_REFRESH_BEFORE,
                crate::clock::SharedClock::system(),
            ))),
        }
    }

    /// Adds the `Authorization` header (marked sensitive) to `request`, whose `x-ms-` headers are all set.
    /// `account` and `path` name the resource; `query` holds the operation's parameters, decoded (a SAS is never
    /// signed by Shared Key: the two do not go together).
    pub(crate) async fn authorize<B>(
        &self,
        request: &mut Request<B>,
        account: &str,
        path: &str,
        query: &[(&str, &str)],
        content_length: usize,
    ) -> Result<(), Error> {
        let value = match self {
            Self::Sas => return Ok(()),
            Self::Key(key) => {
                let ms_headers: Vec<(&str, &str)> = request
                    .headers()
                    .iter()
                    .filter(|(name, _)| name.as_str().starts_with("x-ms-"))
                    .filter_map(|(name, value)| value.to_str().ok().map(|value| (name.as_str(), value)))
                    .collect();
                let content_type = request
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("");
                let canonical = Canonical {
                    method: request.method().as_str(),
                    content_length,
                    content_type,
                    ms_headers: &ms_headers,
                    account,
                    path,
                    query,
                };
                let string_to_sign = shared_key::string_to_sign(&canonical);
                HeaderValue::try_from(shared_key::authorization(key, account, &string_to_sign))
                    .map_err(|_| Error::new(ErrorKind::Credential, "the account name is not a valid header value"))?
            }
            #[cfg(feature = "entra")]
            Self::Entra(cache) => match cache.cached() {
                Some(token) => token.header().clone(),
                None => cache.clone().fetch().await.map(|token| token.header().clone()).map_err(|error| {
                    Error::new(ErrorKind::Credential, "no Microsoft Entra token for Azure Storage").with_source(error)
                })?,
            },
        };
        let mut value = value;
        value.set_sensitive(true);
        request.headers_mut().insert(http::header::AUTHORIZATION, value);
        Ok(())
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Key(_) => "SharedKey(<redacted>)",
            Self::Sas => "Sas(<redacted>)",
            #[cfg(feature = "entra")]
            Self::Entra(_) => "Entra",
        })
    }
}
