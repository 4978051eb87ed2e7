//! Azure clouds: the public cloud and the sovereign ones, with what differs between them.
//!
//! One [`AzureCloud`] value configures every piece that depends on the cloud:
//! [`AllowList::for_cloud`](crate::signing::AllowList::for_cloud) (the recording storage hosts),
//! [`EventGridWebhookLayer::cloud`](crate::eventgrid::EventGridWebhookLayer::cloud) (the `WebHook-Allowed-Origin`
//! answer), `EntraDeliveryCheck::cloud` (feature `entra`: the Entra authority, the token issuers and Event Grid's
//! application id) and `RecorderBuilder::cloud` (feature `recorder`: all of these at once).
//!
//! ```
//! use acs_recording::cloud::AzureCloud;
//! use acs_recording::signing::AllowList;
//!
//! let cloud: AzureCloud = "usgov".parse()?;
//! assert_eq!(cloud.webhook_origin(), "eventgrid.azure.us");
//! assert_eq!(cloud.event_grid_app_id(), Some("54316b56-3481-47f9-8f30-0300f5542a7b"));
//! let allow = AllowList::for_cloud(cloud);
//! assert!(allow.check(&"https://x.ams.gov.teams.microsoft.us/v1/objects/d/content/audio".parse()?).is_ok());
//! assert!(allow.check(&"https://eu.asm.skype.com/v1/objects/d/content/audio".parse()?).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What each preset holds, and where it comes from
//!
//! | | public | US Government | China (21Vianet) |
//! |---|---|---|---|
//! | storage suffixes | `.asm.skype.com`, `.asyncgw.teams.microsoft.com`, `.blob.core.windows.net` | `.ams.gov.teams.microsoft.us`, `.blob.core.usgovcloudapi.net` | `.blob.core.chinacloudapi.cn` |
//! | Event Grid origin | `eventgrid.azure.net` | `eventgrid.azure.us` | `eventgrid.azure.cn` |
//! | Event Grid application | `4962773b-9cdb-44cf-a8bf-237846a00ab7` | `54316b56-3481-47f9-8f30-0300f5542a7b` | not documented |
//! | Entra authority | `login.microsoftonline.com` | `login.microsoftonline.us` | `login.chinacloudapi.cn` |
//!
//! The storage suffixes are those the official SDKs allow for recording content, split by cloud, plus each cloud's
//! blob storage suffix; no ACS recording storage host is documented for China, so its preset allows its blob storage
//! only (add hosts with [`AllowList::allow_suffix`](crate::signing::AllowList::allow_suffix)). The application
//! ids come from the Event Grid secure-webhook scripts (MicrosoftDocs/azure-docs
//! `articles/event-grid/secure-webhook-delivery.md`), which name none for China: there, give it with
//! `EntraDeliveryCheck::allowed_callers`, or every token is refused with 403.

use std::fmt;
use std::str::FromStr;

/// An Azure cloud; [`AzureCloud::Public`] by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AzureCloud {
    /// The public cloud.
    #[default]
    Public,
    /// Azure US Government.
    UsGovernment,
    /// Azure operated by 21Vianet in China.
    China,
}

impl AzureCloud {
    /// Every cloud, in a fixed order.
    pub const ALL: [AzureCloud; 3] = [AzureCloud::Public, AzureCloud::UsGovernment, AzureCloud::China];

    /// The name [`FromStr`] reads: `public`, `usgov` or `china`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::UsGovernment => "usgov",
            Self::China => "china",
        }
    }

    /// The host suffixes recording content may be downloaded from in this cloud (`https` only).
    pub fn storage_suffixes(self) -> &'static [&'static str] {
        match self {
            Self::Public => &[".asm.skype.com", ".asyncgw.teams.microsoft.com", ".blob.core.windows.net"],
            Self::UsGovernment => &[".ams.gov.teams.microsoft.us", ".blob.core.usgovcloudapi.net"],
            Self::China => &[".blob.core.chinacloudapi.cn"],
        }
    }

    /// Event Grid's origin in the CloudEvents handshake (`WebHook-Request-Origin`), granted in
    /// `WebHook-Allowed-Origin`.
    pub fn webhook_origin(self) -> &'static str {
        match self {
            Self::Public => "eventgrid.azure.net",
            Self::UsGovernment => "eventgrid.azure.us",
            Self::China => "eventgrid.azure.cn",
        }
    }

    /// Event Grid's first-party application, the caller (`azp`/`appid`) of its Entra tokens; `None` where it is
    /// not documented (China).
    pub fn event_grid_app_id(self) -> Option<&'static str> {
        match self {
            Self::Public => Some("4962773b-9cdb-44cf-a8bf-237846a00ab7"),
            Self::UsGovernment => Some("54316b56-3481-47f9-8f30-0300f5542a7b"),
            Self::China => None,
        }
    }

    /// The Microsoft Entra authority, whose OpenID configuration names a tenant's signing keys.
    pub fn entra_authority(self) -> &'static str {
        match self {
            Self::Public => "https://login.microsoftonline.com",
            Self::UsGovernment => "https://login.microsoftonline.us",
            Self::China => "https://login.chinacloudapi.cn",
        }
    }

    /// The issuers of `tenant`'s tokens: the v1 form (`https://sts.windows.net/{tenant}/` in the public cloud)
    /// and the v2 form (`{authority}/{tenant}/v2.0`). Where the documentation gives two hosts for a form, both are
    /// listed; a token must still be signed by the tenant's keys.
    pub fn entra_issuers(self, tenant: &str) -> Vec<String> {
        match self {
            Self::Public => vec![
                format!("https://sts.windows.net/{tenant}/"),
                format!("https://login.microsoftonline.com/{tenant}/v2.0"),
            ],
            Self::UsGovernment => vec![
                format!("https://sts.windows.net/{tenant}/"),
                format!("https://login.microsoftonline.us/{tenant}/"),
                format!("https://login.microsoftonline.us/{tenant}/v2.0"),
            ],
            Self::China => vec![
                format!("https://sts.chinacloudapi.cn/{tenant}/"),
                format!("https://login.chinacloudapi.cn/{tenant}/v2.0"),
                format!("https://login.partner.microsoftonline.cn/{tenant}/v2.0"),
            ],
        }
    }
}

impl fmt::Display for AzureCloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AzureCloud {
    type Err = UnknownCloud;

    /// Reads `public`, `usgov` or `china`, ignoring ASCII case (also `AzureCloud`, `AzureUSGovernment` and
    /// `AzureChinaCloud`, the Azure CLI's names).
    fn from_str(name: &str) -> Result<Self, UnknownCloud> {
        let name = name.trim();
        let is = |names: &[&str]| names.iter().any(|n| name.eq_ignore_ascii_case(n));
        if is(&["public", "AzureCloud"]) {
            Ok(Self::Public)
        } else if is(&["usgov", "AzureUSGovernment"]) {
            Ok(Self::UsGovernment)
        } else if is(&["china", "AzureChinaCloud"]) {
            Ok(Self::China)
        } else {
            Err(UnknownCloud(name.to_owned()))
        }
    }
}

/// A cloud name that is not `public`, `usgov` or `china`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownCloud(String);

impl fmt::Display for UnknownCloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown cloud `{}`: expected public, usgov or china", self.0)
    }
}

impl std::error::Error for UnknownCloud {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_unknown_ones_are_named() {
        for cloud in AzureCloud::ALL {
            assert_eq!(cloud.name().parse::<AzureCloud>(), Ok(cloud));
        }
        assert_eq!("AzureUSGovernment".parse::<AzureCloud>(), Ok(AzureCloud::UsGovernment));
        let error = "mars".parse::<AzureCloud>().unwrap_err();
        assert_eq!(error.to_string(), "unknown cloud `mars`: expected public, usgov or china");
    }

    #[test]
    fn every_storage_suffix_starts_with_a_dot_and_belongs_to_one_cloud() {
        for cloud in AzureCloud::ALL {
            for suffix in cloud.storage_suffixes() {
                assert!(suffix.starts_with('.'), "{suffix}");
                let owners = AzureCloud::ALL.iter().filter(|c| c.storage_suffixes().contains(suffix)).count();
                assert_eq!(owners, 1, "{suffix}");
            }
        }
    }
}
