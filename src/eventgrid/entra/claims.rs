//! The rules an Event Grid Entra token must pass, as listed on `EntraDeliveryCheck`: its header before any key is
//! looked up, its signature, then its claims. Every refusal says what was wrong and never contains the token.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use http::header::AUTHORIZATION;
use http::HeaderMap;
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::eventgrid::check::CheckOutcome;

/// The longest token looked at; Entra's are a few kilobytes.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

fn unauthorized(reason: impl Into<String>) -> CheckOutcome {
    CheckOutcome::Unauthorized(reason.into())
}

/// The token of `Authorization: Bearer <token>`.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&str, CheckOutcome> {
    let value = headers.get(AUTHORIZATION).ok_or_else(|| unauthorized("the delivery carries no bearer token"))?;
    let value = value.to_str().map_err(|_| unauthorized("the authorization header is not a bearer token"))?;
    // RFC 6750 §2.1: the scheme is case-insensitive.
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(unauthorized("the authorization header is not a bearer token")),
    };
    if token.is_empty() {
        return Err(unauthorized("the delivery carries no bearer token"));
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(unauthorized(format!("the bearer token is longer than {MAX_TOKEN_BYTES} bytes")));
    }
    Ok(token)
}

/// What the unverified header says: the key to verify with. Only RS256 gets this far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TokenHeader {
    pub(crate) kid: String,
}

/// Reads the JOSE header without trusting it. `alg` must be RS256 (Entra's), so that `none` and an HMAC signed
/// with the public key as secret are refused before any key is involved.
pub(crate) fn header(token: &str) -> Result<TokenHeader, CheckOutcome> {
    #[derive(Deserialize)]
    struct Raw {
        alg: Option<String>,
        kid: Option<String>,
    }
    let not_a_jwt = || unauthorized("the bearer token is not a JSON Web Token");
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(not_a_jwt());
    };
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(header).map_err(|_| not_a_jwt())?;
    let raw: Raw = serde_json::from_slice(&bytes).map_err(|_| unauthorized("the token header is not valid JSON"))?;
    match raw.alg.as_deref() {
        Some("RS256") => {}
        Some(alg) => {
            return Err(unauthorized(format!("the token is signed with `{}`; only RS256 is accepted", shown(alg))))
        }
        None => return Err(unauthorized("the token header names no algorithm")),
    }
    match raw.kid {
        Some(kid) if !kid.is_empty() => Ok(TokenHeader { kid }),
        _ => Err(unauthorized("the token header names no signing key (`kid`)")),
    }
}

/// The claims Event Grid's tokens carry that the rules look at.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Claims {
    iss: Option<String>,
    aud: Option<Audience>,
    exp: Option<f64>,
    nbf: Option<f64>,
    tid: Option<String>,
    /// The calling application in v2 tokens.
    azp: Option<String>,
    /// The calling application in v1 tokens.
    appid: Option<String>,
    roles: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Verifies the RS256 signature with `key` and decodes the claims; the claims are checked by [`Rules::check`].
pub(crate) fn verify(token: &str, key: &DecodingKey) -> Result<Claims, CheckOutcome> {
    let mut validation = Validation::new(Algorithm::RS256);
    // Time, issuer and audience are checked by `Rules`, against the injected clock and with precise reasons.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation.leeway = 0;
    match jsonwebtoken::decode::<Claims>(token, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(error) => Err(unauthorized(match error.kind() {
            JwtErrorKind::InvalidSignature => "the token signature does not verify with the tenant's key",
            JwtErrorKind::Json(_) | JwtErrorKind::Utf8(_) | JwtErrorKind::Base64(_) => "the token claims are malformed",
            _ => "the token is not a valid RS256 JSON Web Token",
        })),
    }
}

/// Who may deliver: the tenant's issuers, this application, Event Grid as the caller, and optionally a role.
#[derive(Clone, Debug)]
pub(crate) struct Rules {
    pub(crate) tenant: String,
    pub(crate) issuers: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) callers: Vec<String>,
    pub(crate) role: Option<String>,
    pub(crate) leeway: Duration,
}

impl Rules {
    /// Checks verified claims at `now`: 401 for a token that is not valid here, 403 for a valid token of a caller
    /// that may not deliver.
    pub(crate) fn check(&self, claims: &Claims, now: SystemTime) -> CheckOutcome {
        let now = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64());
        let leeway = self.leeway.as_secs_f64();
        match claims.exp {
            None => return unauthorized("the token has no expiry (`exp`)"),
            Some(exp) if now > exp + leeway => return unauthorized("the token has expired"),
            Some(_) => {}
        }
        if claims.nbf.is_some_and(|nbf| now + leeway < nbf) {
            return unauthorized("the token is not valid yet (`nbf`)");
        }
        match claims.iss.as_deref() {
            Some(iss) if self.issuers.iter().any(|issuer| issuer == iss) => {}
            Some(iss) => {
                return unauthorized(format!(
                    "the token issuer `{}` is not tenant `{}`",
                    shown(iss),
                    shown(&self.tenant)
                ))
            }
            None => return unauthorized("the token has no issuer (`iss`)"),
        }
        if claims.tid.as_deref().is_some_and(|tid| !tid.eq_ignore_ascii_case(&self.tenant)) {
            return unauthorized(format!("the token was issued for another tenant than `{}`", shown(&self.tenant)));
        }
        let audience_ok = match &claims.aud {
            Some(Audience::One(aud)) => self.audiences.contains(aud),
            Some(Audience::Many(auds)) => auds.iter().any(|aud| self.audiences.contains(aud)),
            None => false,
        };
        if !audience_ok {
            return unauthorized("the token audience (`aud`) is not this application");
        }
        match claims.azp.as_deref().or(claims.appid.as_deref()) {
            Some(caller) if self.callers.iter().any(|allowed| allowed.eq_ignore_ascii_case(caller)) => {}
            Some(caller) => {
                return CheckOutcome::Forbidden(format!(
                    "the token's calling application `{}` is not Event Grid",
                    shown(caller)
                ))
            }
            None => return CheckOutcome::Forbidden("the token names no calling application (`azp` or `appid`)".into()),
        }
        if let Some(role) = &self.role {
            match &claims.roles {
                None => {
                    return CheckOutcome::Forbidden(format!(
                        "the token has no `roles` claim; the role `{role}` is required (assign it to Event Grid's \
                         application)"
                    ))
                }
                Some(roles) if !roles.contains(role) => {
                    return CheckOutcome::Forbidden(format!("the token's roles do not include `{role}`"))
                }
                Some(_) => {}
            }
        }
        CheckOutcome::Allow
    }
}

/// A claim or header value as it may appear in a reason: at most 64 printable ASCII characters.
pub(crate) fn shown(value: &str) -> String {
    let mut shown: String =
        value.chars().take(64).map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect();
    if value.chars().count() > 64 {
        shown.push_str("...");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const NOW: u64 = 1_800_000_000;

    fn rules(role: Option<&str>) -> Rules {
        Rules {
            tenant: TENANT.into(),
            issuers: vec![
                format!("https://sts.windows.net/{TENANT}/"),
                format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
            ],
            audiences: vec!["api://recorder".into(), "11111111-2222-3333-4444-555555555555".into()],
            callers: vec![crate::eventgrid::EVENT_GRID_APP_ID.into()],
            role: role.map(Into::into),
            leeway: Duration::from_secs(60),
        }
    }

    fn valid() -> Claims {
        Claims {
            iss: Some(format!("https://login.microsoftonline.com/{TENANT}/v2.0")),
            aud: Some(Audience::One("api://recorder".into())),
            exp: Some((NOW + 3600) as f64),
            nbf: Some((NOW - 300) as f64),
            tid: Some(TENANT.into()),
            azp: Some(crate::eventgrid::EVENT_GRID_APP_ID.into()),
            appid: None,
            roles: Some(vec!["AzureEventGridSecureWebhookSubscriber".into()]),
        }
    }

    fn at(claims: Claims, role: Option<&str>, now: u64) -> CheckOutcome {
        rules(role).check(&claims, SystemTime::UNIX_EPOCH + Duration::from_secs(now))
    }

    #[test]
    fn claims_rules_decide_between_allow_401_and_403() {
        let v1 = Claims {
            iss: Some(format!("https://sts.windows.net/{TENANT}/")),
            aud: Some(Audience::Many(vec!["other".into(), "11111111-2222-3333-4444-555555555555".into()])),
            azp: None,
            appid: Some(crate::eventgrid::EVENT_GRID_APP_ID.to_uppercase()),
            ..valid()
        };
        let allow = CheckOutcome::Allow;
        let u = |reason: &str| CheckOutcome::Unauthorized(reason.into());
        let f = |reason: &str| CheckOutcome::Forbidden(reason.into());
        let role = Some("AzureEventGridSecureWebhookSubscriber");
        let table: Vec<(&str, Claims, Option<&str>, u64, CheckOutcome)> = vec![
            ("v2 token", valid(), role, NOW, allow.clone()),
            ("v1 token", v1, role, NOW, allow.clone()),
            ("within the leeway after exp", valid(), None, NOW + 3650, allow.clone()),
            ("expired", valid(), None, NOW + 3661, u("the token has expired")),
            ("no exp", Claims { exp: None, ..valid() }, None, NOW, u("the token has no expiry (`exp`)")),
            ("within the leeway before nbf", valid(), None, NOW - 350, allow.clone()),
            ("not yet valid", valid(), None, NOW - 361, u("the token is not valid yet (`nbf`)")),
            (
                "other issuer",
                Claims { iss: Some("https://sts.windows.net/other-tenant/".into()), ..valid() },
                None,
                NOW,
                u("the token issuer `https://sts.windows.net/other-tenant/` is not tenant \
                   `72f988bf-86f1-41af-91ab-2d7cd011db47`"),
            ),
            ("no issuer", Claims { iss: None, ..valid() }, None, NOW, u("the token has no issuer (`iss`)")),
            (
                "other tid",
                Claims { tid: Some("other-tenant".into()), ..valid() },
                None,
                NOW,
                u("the token was issued for another tenant than `72f988bf-86f1-41af-91ab-2d7cd011db47`"),
            ),
            (
                "other audience",
                Claims { aud: Some(Audience::One("api://other".into())), ..valid() },
                None,
                NOW,
                u("the token audience (`aud`) is not this application"),
            ),
            (
                "no audience",
                Claims { aud: None, ..valid() },
                None,
                NOW,
                u("the token audience (`aud`) is not this application"),
            ),
            (
                "other caller",
                Claims { azp: Some("00000000-0000-0000-0000-000000000001".into()), ..valid() },
                None,
                NOW,
                f("the token's calling application `00000000-0000-0000-0000-000000000001` is not Event Grid"),
            ),
            (
                "no caller",
                Claims { azp: None, appid: None, ..valid() },
                None,
                NOW,
                f("the token names no calling application (`azp` or `appid`)"),
            ),
            ("role not required", Claims { roles: None, ..valid() }, None, NOW, allow.clone()),
            (
                "role claim missing",
                Claims { roles: None, ..valid() },
                role,
                NOW,
                f("the token has no `roles` claim; the role `AzureEventGridSecureWebhookSubscriber` is required \
                   (assign it to Event Grid's application)"),
            ),
            (
                "other role",
                Claims { roles: Some(vec!["Reader".into()]), ..valid() },
                role,
                NOW,
                f("the token's roles do not include `AzureEventGridSecureWebhookSubscriber`"),
            ),
        ];
        for (case, claims, role, now, expected) in table {
            assert_eq!(at(claims, role, now), expected, "{case}");
        }
    }

    #[test]
    fn headers_other_than_rs256_with_a_kid_are_refused_before_any_key() {
        let b64 = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        let token = |header: &str| format!("{}.e30.c2ln", b64(header));
        let u = |reason: &str| Err(CheckOutcome::Unauthorized(reason.into()));
        let table = [
            (token(r#"{"alg":"RS256","kid":"k1"}"#), Ok(TokenHeader { kid: "k1".into() })),
            (token(r#"{"alg":"none"}"#), u("the token is signed with `none`; only RS256 is accepted")),
            (token(r#"{"alg":"HS256","kid":"k1"}"#), u("the token is signed with `HS256`; only RS256 is accepted")),
            (token(r#"{"kid":"k1"}"#), u("the token header names no algorithm")),
            (token(r#"{"alg":"RS256"}"#), u("the token header names no signing key (`kid`)")),
            (token(r#"{"alg":"RS256","kid":""}"#), u("the token header names no signing key (`kid`)")),
            (token("not json"), u("the token header is not valid JSON")),
            ("a.b".into(), u("the bearer token is not a JSON Web Token")),
            ("a.b.c.d".into(), u("the bearer token is not a JSON Web Token")),
            ("!!.e30.c2ln".into(), u("the bearer token is not a JSON Web Token")),
        ];
        for (token, expected) in table {
            assert_eq!(header(&token), expected, "{token}");
        }
    }

    #[test]
    fn only_a_bearer_authorization_yields_a_token() {
        let headers = |value: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(AUTHORIZATION, value.parse().unwrap());
            }
            headers
        };
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        let table = [
            (Some("Bearer abc.def.ghi"), Ok("abc.def.ghi")),
            (Some("bearer abc.def.ghi"), Ok("abc.def.ghi")),
            (None, Err("the delivery carries no bearer token")),
            (Some("Bearer "), Err("the delivery carries no bearer token")),
            (Some("Basic dXNlcjpwdw=="), Err("the authorization header is not a bearer token")),
            (Some("Bearer"), Err("the authorization header is not a bearer token")),
            (Some(long.as_str()), Err("the bearer token is longer than 16384 bytes")),
        ];
        for (value, expected) in table {
            let headers = headers(value);
            let got = bearer_token(&headers).map_err(|outcome| match outcome {
                CheckOutcome::Unauthorized(reason) => reason,
                other => panic!("{other:?}"),
            });
            assert_eq!(got.as_ref().map_err(String::as_str), expected.as_ref().map_err(|e| *e), "{value:?}");
        }
    }

    #[test]
    fn claim_values_in_reasons_are_short_and_printable() {
        assert_eq!(shown("abc"), "abc");
        assert_eq!(shown("a\u{7}b\u{e9}"), "a?b?");
        assert_eq!(shown(&"x".repeat(70)), format!("{}...", "x".repeat(64)));
    }
}
