//! Communication identifiers as the Call Automation API writes them: `rawId`, `kind`, and one object named for the
//! kind (`communicationUser`, `phoneNumber`, `microsoftTeamsUser`, `microsoftTeamsApp`, `teamsExtensionUser`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::recording::open_enum;

open_enum! {
    /// Which kind of participant an identifier names (`kind`).
    IdentifierKind {
        /// An identity the service could not classify.
        Unknown => "unknown",
        /// A user of an ACS resource.
        CommunicationUser => "communicationUser",
        /// A phone number.
        PhoneNumber => "phoneNumber",
        /// A Microsoft Teams user.
        MicrosoftTeamsUser => "microsoftTeamsUser",
        /// A Microsoft Teams application.
        MicrosoftTeamsApp => "microsoftTeamsApp",
        /// A Teams Phone user extended through an ACS resource.
        TeamsExtensionUser => "teamsExtensionUser",
    }
}

open_enum! {
    /// The cloud a Teams identity belongs to (`cloud`); the service reads a missing value as `public`.
    CommunicationCloud {
        /// The public cloud.
        Public => "public",
        /// US Department of Defense.
        Dod => "dod",
        /// US Government Community Cloud High.
        Gcch => "gcch",
    }
}

/// A participant of a call: `kind`, `rawId`, and the object of that kind.
///
/// The API reads at most one of the kind objects, the one [`kind`](Self::kind) names. `rawId` is optional in
/// requests (the service fills it in its answers); fields this version does not know are kept in `other`.
///
/// ```
/// use acs_recording::calling::CommunicationIdentifier;
///
/// let user = CommunicationIdentifier::communication_user("8:acs:resource_user");
/// assert_eq!(
///     serde_json::to_string(&user).unwrap(),
///     r#"{"kind":"communicationUser","communicationUser":{"id":"8:acs:resource_user"}}"#
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CommunicationIdentifier {
    /// The identifier's raw form, such as `4:+14255550123`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_id: Option<String>,
    /// Which of the kind objects is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<IdentifierKind>,
    /// A user of an ACS resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communication_user: Option<CommunicationUser>,
    /// A phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<PhoneNumber>,
    /// A Microsoft Teams user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microsoft_teams_user: Option<MicrosoftTeamsUser>,
    /// A Microsoft Teams application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microsoft_teams_app: Option<MicrosoftTeamsApp>,
    /// A Teams Phone user extended through an ACS resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_extension_user: Option<TeamsExtensionUser>,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl CommunicationIdentifier {
    /// A user of an ACS resource, by its id (`8:acs:...`).
    pub fn communication_user(id: impl Into<String>) -> Self {
        Self {
            kind: Some(IdentifierKind::CommunicationUser),
            communication_user: Some(CommunicationUser { id: id.into(), other: Map::new() }),
            ..Self::default()
        }
    }

    /// A phone number, usually in E.164 form (`+14255550123`).
    pub fn phone_number(value: impl Into<String>) -> Self {
        Self {
            kind: Some(IdentifierKind::PhoneNumber),
            phone_number: Some(PhoneNumber { value: value.into(), ..PhoneNumber::default() }),
            ..Self::default()
        }
    }

    /// A Microsoft Teams user, by the Entra object id of the user.
    pub fn microsoft_teams_user(user_id: impl Into<String>) -> Self {
        Self {
            kind: Some(IdentifierKind::MicrosoftTeamsUser),
            microsoft_teams_user: Some(MicrosoftTeamsUser { user_id: user_id.into(), ..MicrosoftTeamsUser::default() }),
            ..Self::default()
        }
    }

    /// A Microsoft Teams application, by its app id.
    pub fn microsoft_teams_app(app_id: impl Into<String>) -> Self {
        Self {
            kind: Some(IdentifierKind::MicrosoftTeamsApp),
            microsoft_teams_app: Some(MicrosoftTeamsApp { app_id: app_id.into(), ..MicrosoftTeamsApp::default() }),
            ..Self::default()
        }
    }

    /// A Teams Phone user extended through an ACS resource, by the user's Entra object id and tenant id.
    pub fn teams_extension_user(user_id: impl Into<String>, tenant_id: impl Into<String>) -> Self {
        Self {
            kind: Some(IdentifierKind::TeamsExtensionUser),
            teams_extension_user: Some(TeamsExtensionUser {
                user_id: user_id.into(),
                tenant_id: tenant_id.into(),
                ..TeamsExtensionUser::default()
            }),
            ..Self::default()
        }
    }

    /// Sets the raw id.
    pub fn with_raw_id(mut self, raw_id: impl Into<String>) -> Self {
        self.raw_id = Some(raw_id.into());
        self
    }
}

/// A user of an ACS resource (`communicationUser`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CommunicationUser {
    /// The user's id.
    pub id: String,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A phone number (`phoneNumber`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PhoneNumber {
    /// The number, usually E.164; `anonymous` for an anonymous caller.
    pub value: String,
    /// Whether the number is anonymous (the service reads a missing value as `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_anonymous: Option<bool>,
    /// Tells apart two joins of one number to the same call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asserted_id: Option<String>,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A Microsoft Teams user (`microsoftTeamsUser`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MicrosoftTeamsUser {
    /// The user's Entra object id, unless anonymous.
    pub user_id: String,
    /// Whether the user is anonymous (the service reads a missing value as `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_anonymous: Option<bool>,
    /// The user's cloud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CommunicationCloud>,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A Microsoft Teams application (`microsoftTeamsApp`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MicrosoftTeamsApp {
    /// The application's id.
    pub app_id: String,
    /// The application's cloud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CommunicationCloud>,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A Teams Phone user extended through an ACS resource (`teamsExtensionUser`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TeamsExtensionUser {
    /// The user's Entra object id.
    pub user_id: String,
    /// The user's tenant id.
    pub tenant_id: String,
    /// The ACS resource id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// The user's cloud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CommunicationCloud>,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_constructor_writes_its_kind_and_the_object_of_that_kind() {
        let cases = [
            (
                CommunicationIdentifier::phone_number("+14255550123"),
                r#"{"kind":"phoneNumber","phoneNumber":{"value":"+14255550123"}}"#,
            ),
            (
                CommunicationIdentifier::microsoft_teams_user("u1"),
                r#"{"kind":"microsoftTeamsUser","microsoftTeamsUser":{"userId":"u1"}}"#,
            ),
            (
                CommunicationIdentifier::microsoft_teams_app("a1"),
                r#"{"kind":"microsoftTeamsApp","microsoftTeamsApp":{"appId":"a1"}}"#,
            ),
            (
                CommunicationIdentifier::teams_extension_user("u1", "t1").with_raw_id("8:acs:r_t1_u1"),
                r#"{"rawId":"8:acs:r_t1_u1","kind":"teamsExtensionUser","teamsExtensionUser":{"userId":"u1","tenantId":"t1"}}"#,
            ),
        ];
        for (identifier, json) in cases {
            assert_eq!(serde_json::to_string(&identifier).unwrap(), json);
            assert_eq!(serde_json::from_str::<CommunicationIdentifier>(json).unwrap(), identifier);
        }
    }

    #[test]
    fn an_unknown_kind_and_unknown_fields_are_kept() {
        let json = r#"{"rawId":"x:1","kind":"somethingNew","somethingNew":{"id":"1"}}"#;
        let identifier: CommunicationIdentifier = serde_json::from_str(json).unwrap();
        assert_eq!(identifier.kind, Some(IdentifierKind::Other("somethingNew".into())));
        assert_eq!(serde_json::to_string(&identifier).unwrap(), json);
    }
}
