//! Forms: the CSRF value of forms shown before signing in, validation
//! messages per field, and times typed in the university's zone.

use super::ANON_CSRF_COOKIE;
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The CSRF value for forms shown before signing in, creating the cookie
/// when missing.
pub fn anon_csrf(app: &AppState, jar: CookieJar) -> (CookieJar, String) {
    if let Some(c) = jar.get(ANON_CSRF_COOKIE) {
        let v = c.value().to_string();
        if v.len() >= 16 {
            return (jar, v);
        }
    }
    use base64::Engine;
    let bytes: [u8; 18] = rand::random();
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let cookie = Cookie::build((ANON_CSRF_COOKIE, value.clone()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(app.config.secure_cookies)
        .build();
    (jar.add(cookie), value)
}

/// Checks a pre-login form's CSRF field against its cookie, in constant time.
pub fn check_anon_csrf(jar: &CookieJar, submitted: &str) -> ApiResult<()> {
    use subtle::ConstantTimeEq;
    match jar.get(ANON_CSRF_COOKIE) {
        Some(c)
            if c.value().len() >= 16
                && bool::from(c.value().as_bytes().ct_eq(submitted.as_bytes())) =>
        {
            Ok(())
        }
        _ => Err(ApiError::Csrf),
    }
}

/// Validation messages keyed by form field, shown next to the field.
#[derive(Debug, Default, Clone)]
pub struct FieldErrors {
    items: Vec<(&'static str, String)>,
}

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.items.push((field, message.into()));
    }

    /// The message for `field`, if any.
    pub fn of(&self, field: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn all(&self) -> &[(&'static str, String)] {
        &self.items
    }
}

/// Parses a university-local `datetime-local` value (`2026-11-21T09:00`).
pub fn parse_local(tz: Tz, s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
        .ok()?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// A UTC time as a `datetime-local` value in the university's zone.
pub fn local_input(tz: Tz, t: &NaiveDateTime) -> String {
    t.and_utc()
        .with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_are_read_in_the_zone() {
        let t = parse_local(chrono_tz::Asia::Seoul, "2026-11-21T09:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-21T00:00:00+00:00");
        assert!(parse_local(chrono_tz::Asia::Seoul, "tomorrow").is_none());
        assert_eq!(
            local_input(chrono_tz::Asia::Seoul, &t.naive_utc()),
            "2026-11-21T09:00"
        );
    }
}
