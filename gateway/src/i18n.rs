//! Page languages: Korean and English, chosen per request.
//!
//! The choice comes from `?lang=` (remembered in the `sluice_lang` cookie),
//! then that cookie, then `Accept-Language`, and falls back to Korean, which
//! most of the university's students read. Page strings sit next to each
//! other in the templates as `t("한국어", "English")` pairs, so a new string
//! cannot be added in one language only and a reviewer sees both at once.
//! Texts a handler picks (messages, notices, outcomes) sit the same way in
//! the submodules, grouped by what they speak of.

pub mod outcomes;
pub mod student;

pub mod registrar;

use axum::http::{header, HeaderMap};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

/// The cookie remembering an explicit language choice.
pub const LANG_COOKIE: &str = "sluice_lang";

/// The page languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ko,
    En,
}

impl Lang {
    /// The BCP 47 code, for `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ko => "ko",
            Lang::En => "en",
        }
    }

    /// The language the switch link offers.
    pub fn other(self) -> Lang {
        match self {
            Lang::Ko => Lang::En,
            Lang::En => Lang::Ko,
        }
    }

    /// The switch link's label, written in the language it switches to.
    pub fn switch_label(self) -> &'static str {
        match self {
            Lang::Ko => "English",
            Lang::En => "한국어",
        }
    }

    /// Picks the string of this language.
    pub fn t(self, ko: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Ko => ko,
            Lang::En => en,
        }
    }

    /// Parses `ko`, `en`, `ko-KR`, `en-US`, ...
    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().get(..2).map(str::to_ascii_lowercase).as_deref() {
            Some("ko") => Some(Lang::Ko),
            Some("en") => Some(Lang::En),
            _ => None,
        }
    }

    /// The best match in an Accept-Language header (highest q wins, Korean
    /// when nothing matches).
    pub fn negotiate(accept: Option<&str>) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for part in accept.unwrap_or("").split(',') {
            let mut pieces = part.split(';');
            let Some(lang) = pieces.next().and_then(Lang::parse) else {
                continue;
            };
            let q = pieces
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::Ko, |(_, l)| l)
    }

    /// The language of a request: `?lang=` value, cookie, Accept-Language.
    pub fn of_request(query_lang: Option<&str>, jar: &CookieJar, headers: &HeaderMap) -> Lang {
        if let Some(lang) = query_lang.and_then(Lang::parse) {
            return lang;
        }
        if let Some(lang) = jar.get(LANG_COOKIE).and_then(|c| Lang::parse(c.value())) {
            return lang;
        }
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        Lang::negotiate(accept)
    }

    /// The cookie that remembers an explicit choice.
    pub fn cookie(self) -> Cookie<'static> {
        Cookie::build((LANG_COOKIE, self.code()))
            .path("/")
            .same_site(SameSite::Lax)
            .build()
    }
}

/// The `lang` parameter of a query string, if any.
pub fn query_lang(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("lang="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_languages() {
        assert_eq!(Lang::negotiate(None), Lang::Ko);
        assert_eq!(Lang::negotiate(Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(Lang::negotiate(Some("en;q=0.5, ko-KR;q=0.8")), Lang::Ko);
        assert_eq!(Lang::negotiate(Some("fr, de;q=0.5")), Lang::Ko);
        assert_eq!(Lang::negotiate(Some("de, en;q=0.1")), Lang::En);
    }

    #[test]
    fn finds_the_lang_parameter() {
        assert_eq!(query_lang(Some("q=x&lang=en")), Some("en"));
        assert_eq!(query_lang(Some("q=x")), None);
        assert_eq!(query_lang(None), None);
    }
}
