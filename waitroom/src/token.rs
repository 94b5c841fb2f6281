//! Signed, expiring, student-bound tokens.
//!
//! A token reads `KID.PAYLOAD.MAC`: `KID` names the signing key, `PAYLOAD` is
//! base64url JSON claims and `MAC` is base64url HMAC-SHA256 over
//! `KID.PAYLOAD`. Verification looks the key up by id, so during a rotation
//! the old and new keys are both accepted while only the active one signs.
//! MACs are compared in constant time (`Mac::verify_slice`).
//!
//! Two kinds share the format and can never be mistaken for each other (the
//! kind is inside the signed claims): a *queue token* holds a student's place
//! (`seq` is their ticket), an *admission pass* opens the enrollment pages and
//! travels inside every command to the worker (`lease` identifies the
//! admission, `budget` caps the commands it may carry).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use enrollment::{RoundId, StudentId};
use hmac::{Hmac, Mac};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// The longest token accepted before any work is done on it.
pub const MAX_TOKEN_LEN: usize = 512;

/// Why a token was refused. The variants are what callers need to answer
/// differently (rejoin vs. refresh); details stay out of client messages.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is not in the KID.PAYLOAD.MAC form")]
    Malformed,
    #[error("token was signed with an unknown key")]
    UnknownKey,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token is of another kind")]
    WrongKind,
    #[error("token has expired")]
    Expired,
    #[error("token belongs to another student or round")]
    Mismatch,
}

/// Keys that sign and verify tokens. Debug output never shows key bytes.
#[derive(Clone)]
pub struct Keyring {
    active: String,
    keys: Vec<(String, Vec<u8>)>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("keys", &ids)
            .finish()
    }
}

/// Why a key specification was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeySpecError {
    #[error("key spec is empty; expected `kid:secret[,kid:secret...]`")]
    Empty,
    #[error("key entry {0} is not `kid:secret`")]
    Entry(usize),
    #[error("key id {0:?} must be 1-16 characters of [A-Za-z0-9_-]")]
    KeyId(String),
    #[error("secret for key {0:?} is shorter than 32 bytes")]
    Short(String),
}

impl Keyring {
    /// Parses `kid:secret[,kid:secret...]`; the first key signs, all verify.
    /// Secrets are used as given (at least 32 bytes).
    pub fn from_spec(spec: &str) -> Result<Keyring, KeySpecError> {
        let mut keys = Vec::new();
        for (i, entry) in spec
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let (kid, secret) = entry.split_once(':').ok_or(KeySpecError::Entry(i))?;
            let valid_kid = !kid.is_empty()
                && kid.len() <= 16
                && kid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid_kid {
                return Err(KeySpecError::KeyId(kid.to_string()));
            }
            if secret.len() < 32 {
                return Err(KeySpecError::Short(kid.to_string()));
            }
            keys.push((kid.to_string(), secret.as_bytes().to_vec()));
        }
        let active = keys.first().ok_or(KeySpecError::Empty)?.0.clone();
        Ok(Keyring { active, keys })
    }

    /// The id of the key that signs new tokens.
    pub fn active_kid(&self) -> &str {
        &self.active
    }

    fn key(&self, kid: &str) -> Option<&[u8]> {
        self.keys
            .iter()
            .find(|(k, _)| k == kid)
            .map(|(_, v)| v.as_slice())
    }

    fn mac(key: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length.
        HmacSha256::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("hmac accepts any key length"))
    }

    fn sign_claims<C: Serialize>(&self, claims: &C) -> String {
        let payload = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signed = format!("{}.{}", self.active, payload);
        let key = self.key(&self.active).unwrap_or_default();
        let mut mac = Self::mac(key);
        mac.update(signed.as_bytes());
        let tag = B64.encode(mac.finalize().into_bytes());
        format!("{signed}.{tag}")
    }

    fn open_claims<C: DeserializeOwned>(&self, token: &str) -> Result<C, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (signed, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (kid, payload) = signed.split_once('.').ok_or(TokenError::Malformed)?;
        let key = self.key(kid).ok_or(TokenError::UnknownKey)?;
        let tag = B64.decode(tag).map_err(|_| TokenError::Malformed)?;
        let mut mac = Self::mac(key);
        mac.update(signed.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        let json = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
        serde_json::from_slice(&json).map_err(|_| TokenError::WrongKind)
    }

    /// Signs a queue token.
    pub fn sign_queue(&self, claims: &QueueClaims) -> String {
        self.sign_claims(&Tagged {
            k: Kind::Queue,
            c: claims,
        })
    }

    /// Signs an admission pass.
    pub fn sign_pass(&self, claims: &PassClaims) -> String {
        self.sign_claims(&Tagged {
            k: Kind::Pass,
            c: claims,
        })
    }

    /// Verifies a queue token's signature and expiry at `now_ms`.
    pub fn verify_queue(&self, token: &str, now_ms: u64) -> Result<QueueClaims, TokenError> {
        let t: Tagged<QueueClaims> = self.open_claims(token)?;
        if t.k != Kind::Queue {
            return Err(TokenError::WrongKind);
        }
        if now_ms >= t.c.exp {
            return Err(TokenError::Expired);
        }
        Ok(t.c)
    }

    /// Verifies a pass's signature only; the caller decides which instant
    /// the expiry is judged at (see [`PassClaims::check`]).
    pub fn open_pass(&self, token: &str) -> Result<PassClaims, TokenError> {
        let t: Tagged<PassClaims> = self.open_claims(token)?;
        if t.k != Kind::Pass {
            return Err(TokenError::WrongKind);
        }
        Ok(t.c)
    }

    /// Signs a login session.
    pub fn sign_session(&self, claims: &SessionClaims) -> String {
        self.sign_claims(&Tagged {
            k: Kind::Session,
            c: claims,
        })
    }

    /// Verifies a login session's signature and expiry at `now_ms`.
    pub fn verify_session(&self, token: &str, now_ms: u64) -> Result<SessionClaims, TokenError> {
        let t: Tagged<SessionClaims> = self.open_claims(token)?;
        if t.k != Kind::Session {
            return Err(TokenError::WrongKind);
        }
        if now_ms >= t.c.exp {
            return Err(TokenError::Expired);
        }
        Ok(t.c)
    }

    /// Verifies a pass for `student` in `round` at `now_ms`.
    pub fn verify_pass(
        &self,
        token: &str,
        student: StudentId,
        round: RoundId,
        now_ms: u64,
    ) -> Result<PassClaims, TokenError> {
        let claims = self.open_pass(token)?;
        claims.check(student, round, now_ms)?;
        Ok(claims)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Kind {
    #[serde(rename = "q")]
    Queue,
    #[serde(rename = "p")]
    Pass,
    #[serde(rename = "s")]
    Session,
}

/// Who a login session belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Subject {
    Student {
        #[serde(rename = "s")]
        id: StudentId,
        /// Carried so joining needs no database read.
        #[serde(rename = "y")]
        class_year: u8,
    },
    Admin {
        #[serde(rename = "a")]
        id: u32,
        #[serde(rename = "n")]
        username: String,
        /// `registrar`, `ops` or `viewer` (the `admins.role` column).
        #[serde(rename = "o")]
        role: String,
    },
}

/// A signed-in student or admin. Stateless: the cookie is the session.
/// `csrf` is a random value that forms must echo back; an attacker's page
/// cannot read it (the cookie is HttpOnly), so it cannot forge a form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    #[serde(rename = "u")]
    pub subject: Subject,
    #[serde(rename = "x")]
    pub csrf: String,
    #[serde(rename = "i")]
    pub iat: u64,
    #[serde(rename = "e")]
    pub exp: u64,
}

impl SessionClaims {
    /// A session for `subject` valid for `ttl_ms`, with a fresh CSRF value.
    pub fn new(subject: Subject, now_ms: u64, ttl_ms: u64) -> SessionClaims {
        use rand::RngCore;
        let mut nonce = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut nonce);
        SessionClaims {
            subject,
            csrf: B64.encode(nonce),
            iat: now_ms,
            exp: now_ms.saturating_add(ttl_ms),
        }
    }

    /// Constant-time check of a submitted CSRF value.
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.csrf.len() == submitted.len()
            && bool::from(self.csrf.as_bytes().ct_eq(submitted.as_bytes()))
    }
}

#[derive(Serialize, Deserialize)]
struct Tagged<C> {
    k: Kind,
    #[serde(flatten)]
    c: C,
}

/// A student's place in a round's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueClaims {
    #[serde(rename = "r")]
    pub round: RoundId,
    #[serde(rename = "s")]
    pub student: StudentId,
    /// The ticket's global sequence number.
    #[serde(rename = "q")]
    pub seq: u64,
    /// The ticket's order key once it has one (pre-queue tickets get theirs
    /// when the round opens), so polls need not look it up.
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    pub order_key: Option<u64>,
    /// The serving mark when the place was taken, for the progress bar.
    #[serde(rename = "m", default)]
    pub mark_at_join: u64,
    /// Unix milliseconds.
    #[serde(rename = "i")]
    pub iat: u64,
    #[serde(rename = "e")]
    pub exp: u64,
}

/// An admission: lets a student send enrollment commands in a round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassClaims {
    #[serde(rename = "r")]
    pub round: RoundId,
    #[serde(rename = "s")]
    pub student: StudentId,
    /// Identifies this admission; commands carry it to the worker.
    #[serde(rename = "l")]
    pub lease: uuid::Uuid,
    /// How many commands the pass may carry.
    #[serde(rename = "b")]
    pub budget: u16,
    #[serde(rename = "i")]
    pub iat: u64,
    #[serde(rename = "e")]
    pub exp: u64,
}

impl PassClaims {
    /// Checks binding and expiry at `at_ms`.
    pub fn check(&self, student: StudentId, round: RoundId, at_ms: u64) -> Result<(), TokenError> {
        if self.student != student || self.round != round {
            return Err(TokenError::Mismatch);
        }
        if at_ms >= self.exp || at_ms + CLOCK_SKEW_MS < self.iat {
            return Err(TokenError::Expired);
        }
        Ok(())
    }
}

/// A key for developer machines and tests only; gateway and worker warn when
/// they run with it. Production reads `SLUICE_SIGNING_KEYS(_FILE)`.
pub const DEV_KEY_SPEC: &str = "dev:sluice-development-key-not-for-production-use";

/// The variable naming a file that holds the key spec (a mounted Secret);
/// gateway and worker both prefer it over an inline `SLUICE_SIGNING_KEYS`.
pub const KEYS_FILE_ENV: &str = "SLUICE_SIGNING_KEYS_FILE";

/// The key spec from the file named by [`KEYS_FILE_ENV`], trimmed; `None`
/// when the variable is not set.
pub fn key_spec_from_file() -> Option<std::io::Result<String>> {
    let path = std::env::var(KEYS_FILE_ENV).ok()?;
    Some(std::fs::read_to_string(path).map(|s| s.trim().to_string()))
}

/// Clock difference tolerated between pods.
pub const CLOCK_SKEW_MS: u64 = 5_000;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const K1: &str = "k1:0123456789abcdef0123456789abcdef";
    const K0: &str = "k0:fedcba9876543210fedcba9876543210";

    fn pass() -> PassClaims {
        PassClaims {
            round: RoundId(3),
            student: StudentId(42),
            lease: uuid::Uuid::from_u128(7),
            budget: 20,
            iat: 1_000,
            exp: 61_000,
        }
    }

    #[test]
    fn pass_round_trip_and_binding() {
        let ring = Keyring::from_spec(K1).unwrap();
        let token = ring.sign_pass(&pass());
        assert_eq!(
            ring.verify_pass(&token, StudentId(42), RoundId(3), 2_000),
            Ok(pass())
        );
        assert_eq!(
            ring.verify_pass(&token, StudentId(43), RoundId(3), 2_000),
            Err(TokenError::Mismatch)
        );
        assert_eq!(
            ring.verify_pass(&token, StudentId(42), RoundId(4), 2_000),
            Err(TokenError::Mismatch)
        );
        assert_eq!(
            ring.verify_pass(&token, StudentId(42), RoundId(3), 61_000),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn sessions_verify_expire_and_check_csrf() {
        let ring = Keyring::from_spec(K1).unwrap();
        let claims = SessionClaims::new(
            Subject::Student {
                id: StudentId(42),
                class_year: 2,
            },
            1_000,
            60_000,
        );
        let token = ring.sign_session(&claims);
        assert_eq!(ring.verify_session(&token, 2_000), Ok(claims.clone()));
        assert_eq!(
            ring.verify_session(&token, 61_000),
            Err(TokenError::Expired)
        );
        assert_eq!(ring.open_pass(&token), Err(TokenError::WrongKind));
        assert!(claims.csrf_matches(&claims.csrf.clone()));
        assert!(!claims.csrf_matches("nope"));
        assert!(!claims.csrf_matches(""));
        let other = SessionClaims::new(
            Subject::Student {
                id: StudentId(42),
                class_year: 2,
            },
            1_000,
            60_000,
        );
        assert_ne!(
            claims.csrf, other.csrf,
            "each session has its own CSRF value"
        );
        let admin = SessionClaims::new(
            Subject::Admin {
                id: 1,
                username: "registrar".into(),
                role: "registrar".into(),
            },
            1_000,
            60_000,
        );
        let t = ring.sign_session(&admin);
        assert_eq!(
            ring.verify_session(&t, 1_500).unwrap().subject,
            admin.subject
        );
        let pass_token = ring.sign_pass(&pass());
        assert_eq!(
            ring.verify_session(&pass_token, 1_500),
            Err(TokenError::WrongKind)
        );
    }

    #[test]
    fn kinds_are_not_interchangeable() {
        let ring = Keyring::from_spec(K1).unwrap();
        let q = QueueClaims {
            round: RoundId(3),
            student: StudentId(42),
            seq: 9,
            order_key: Some(4),
            mark_at_join: 1,
            iat: 0,
            exp: 10_000,
        };
        let qt = ring.sign_queue(&q);
        assert_eq!(ring.verify_queue(&qt, 1), Ok(q));
        assert_eq!(ring.open_pass(&qt), Err(TokenError::WrongKind));
        let pt = ring.sign_pass(&pass());
        assert_eq!(ring.verify_queue(&pt, 1), Err(TokenError::WrongKind));
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_and_forgery_fails() {
        let old = Keyring::from_spec(K0).unwrap();
        let token = old.sign_pass(&pass());
        let rotated = Keyring::from_spec(&format!("{K1},{K0}")).unwrap();
        assert_eq!(rotated.active_kid(), "k1");
        assert!(rotated.open_pass(&token).is_ok());
        let retired = Keyring::from_spec(K1).unwrap();
        assert_eq!(retired.open_pass(&token), Err(TokenError::UnknownKey));

        // Re-labelling the key id or editing the payload breaks the MAC.
        let relabelled = token.replacen("k0.", "k1.", 1);
        assert_eq!(
            rotated.open_pass(&relabelled),
            Err(TokenError::BadSignature)
        );
        let (kid_payload, tag) = token.rsplit_once('.').unwrap();
        let mut forged_claims = pass();
        forged_claims.student = StudentId(1);
        let forged_payload = B64.encode(
            serde_json::to_vec(&Tagged {
                k: Kind::Pass,
                c: &forged_claims,
            })
            .unwrap(),
        );
        let forged = format!("k0.{forged_payload}.{tag}");
        assert_ne!(kid_payload, forged.rsplit_once('.').unwrap().0);
        assert_eq!(rotated.open_pass(&forged), Err(TokenError::BadSignature));
    }

    #[test]
    fn key_specs() {
        assert_eq!(Keyring::from_spec("").unwrap_err(), KeySpecError::Empty);
        assert_eq!(
            Keyring::from_spec("k1:short").unwrap_err(),
            KeySpecError::Short("k1".into())
        );
        assert!(matches!(
            Keyring::from_spec("no-colon").unwrap_err(),
            KeySpecError::Entry(0)
        ));
        assert!(matches!(
            Keyring::from_spec("bad kid:0123456789abcdef0123456789abcdef"),
            Err(KeySpecError::KeyId(_))
        ));
        let ring = Keyring::from_spec(K1).unwrap();
        assert!(
            !format!("{ring:?}").contains("0123456789"),
            "debug output must not leak keys"
        );
    }

    proptest! {
        #[test]
        fn garbage_never_verifies(s in ".{0,600}") {
            let ring = Keyring::from_spec(K1).unwrap();
            prop_assert!(ring.open_pass(&s).is_err());
            prop_assert!(ring.verify_queue(&s, 0).is_err());
        }

        /// Every kind of token round-trips with its claims intact, is
        /// refused as any other kind, and means nothing under other keys.
        #[test]
        fn every_kind_round_trips_and_keeps_its_kind(
            round in any::<u32>(), student in any::<u32>(), seq in any::<u64>(),
            order_key in any::<Option<u64>>(), mark in any::<u64>(), lease in any::<u128>(),
            budget in any::<u16>(), iat in 0u64..(1 << 50), ttl in 1u64..(1 << 40),
            admin in any::<bool>(), name in "[a-z0-9_.-]{1,64}",
        ) {
            let ring = Keyring::from_spec(K1).unwrap();
            let stranger = Keyring::from_spec(K0).unwrap();
            let exp = iat + ttl;
            let q = QueueClaims {
                round: RoundId(round), student: StudentId(student), seq, order_key,
                mark_at_join: mark, iat, exp,
            };
            let p = PassClaims {
                round: RoundId(round), student: StudentId(student),
                lease: uuid::Uuid::from_u128(lease), budget, iat, exp,
            };
            let subject = if admin {
                Subject::Admin { id: student, username: name, role: "viewer".into() }
            } else {
                Subject::Student { id: StudentId(student), class_year: (round % 8) as u8 + 1 }
            };
            let s = SessionClaims::new(subject, iat, ttl);
            let (qt, pt, st) = (ring.sign_queue(&q), ring.sign_pass(&p), ring.sign_session(&s));
            prop_assert!(qt.len() <= MAX_TOKEN_LEN && pt.len() <= MAX_TOKEN_LEN);
            prop_assert_eq!(ring.verify_queue(&qt, iat), Ok(q));
            prop_assert_eq!(ring.open_pass(&pt), Ok(p));
            prop_assert_eq!(ring.verify_session(&st, iat), Ok(s));
            prop_assert_eq!(ring.verify_queue(&qt, exp), Err(TokenError::Expired));
            for t in [&pt, &st] {
                prop_assert_eq!(ring.verify_queue(t, iat), Err(TokenError::WrongKind));
            }
            for t in [&qt, &st] {
                prop_assert_eq!(ring.open_pass(t), Err(TokenError::WrongKind));
            }
            for t in [&qt, &pt] {
                prop_assert_eq!(ring.verify_session(t, iat), Err(TokenError::WrongKind));
            }
            for t in [&qt, &pt, &st] {
                prop_assert_eq!(stranger.open_pass(t), Err(TokenError::UnknownKey));
            }
        }

        #[test]
        fn any_single_byte_change_is_refused(idx in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let ring = Keyring::from_spec(K1).unwrap();
            let token = ring.sign_pass(&pass());
            let mut bytes = token.clone().into_bytes();
            let i = idx.index(bytes.len());
            prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            if let Ok(t) = String::from_utf8(bytes) {
                prop_assert!(ring.open_pass(&t).is_err(), "changed token {} accepted", t);
            }
        }
    }
}
