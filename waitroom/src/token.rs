//! Signed, expiring, student-bound tokens.
//!
//! A token reads `KID.PAYLOAD.MAC`: `KID` names the signing key, `PAYLOAD` is
//! base64url claims and `MAC` is base64url over `KID.PAYLOAD`. Verification
//! looks the key up by id, so during a rotation the old and new keys are
//! both accepted while only the active one signs. MACs are compared in
//! constant time.
//!
//! Passes and sessions carry JSON claims under HMAC-SHA256. Queue tokens,
//! which every poll opens, carry the compact claims of [`compact`] under
//! keyed BLAKE3 cut to 128 bits ([`QueueFormat::Fast`]): usually one
//! compression of a 64-byte block instead of HMAC's two SHA-256 blocks, about a fifth
//! of a poll's work on the gateway. The payload's first byte names the MAC
//! (it is inside the signed text, so changing it only asks for a forgery
//! under the other MAC, with another key); queue tokens written by earlier
//! builds (compact or JSON under HMAC-SHA256) still verify.
//!
//! Three kinds share the format and can never be mistaken for each other (the
//! kind is inside the signed claims): a *queue token* holds a student's place
//! (`seq` is their ticket), an *admission pass* opens the enrollment pages and
//! travels inside every command to the worker (`lease` identifies the
//! admission, `budget` caps the commands it may carry), a *session* is a
//! signed-in student or admin.
//!
//! Each kind is signed with its own subkey, `HMAC-SHA256(secret, label)`
//! (HKDF-Expand with one output block) under the labels `queue`, `pass` and
//! `session`, so a key that can verify one kind cannot sign another. The
//! worker only verifies passes: [`Keyring::pass_only`] holds nothing else,
//! and the gateway can take its pass keys from a secret of their own
//! ([`Keyring::with_pass_keys`]), so nothing a worker holds can mint a
//! session.
//!
//! Rotation is three steps, so that no pod ever meets a token signed with a
//! key it does not know: add the new key *after* the current one everywhere
//! (it verifies, nothing signs with it yet); once every pod has it, move it
//! first (it signs); once the longest-lived token signed with the old key has
//! expired, remove the old key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use enrollment::{RoundId, StudentId};
use hmac::{Hmac, Mac};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;

mod b64;
pub mod compact;

type HmacSha256 = Hmac<Sha256>;

/// The longest token accepted before any work is done on it.
pub const MAX_TOKEN_LEN: usize = 512;

/// Bytes of keyed BLAKE3 kept as a queue token's MAC: 128 bits, as with
/// AES-CMAC or Poly1305, so a forgery stays a 2^-128 guess per try.
const FAST_TAG_LEN: usize = 16;

/// How queue tokens are written. Every build reads all three; a fleet
/// being upgraded writes what its oldest pod reads until every pod runs the
/// new build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueFormat {
    /// Compact claims under keyed BLAKE3 (the default).
    #[default]
    Fast,
    /// Compact claims under HMAC-SHA256, what builds before the fast MAC
    /// write and read.
    Hmac,
    /// JSON claims under HMAC-SHA256, what builds before the compact
    /// encoding read.
    Json,
}

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

/// Keys that sign and verify tokens, one set per kind. Debug output never
/// shows key bytes.
#[derive(Clone)]
pub struct Keyring {
    queue: KeySet,
    pass: KeySet,
    session: KeySet,
    /// How queue tokens are written (all forms are read).
    queue_format: QueueFormat,
}

/// The subkeys of one purpose: the first signs, all verify. Empty in a
/// keyring that has no business with that kind.
#[derive(Clone, Default)]
struct KeySet {
    keys: Vec<Subkey>,
}

/// One subkey, with the HMAC already keyed by it: keying hashes the inner
/// and outer pads (two SHA-256 blocks), work every token would otherwise
/// repeat. Each use clones the keyed state.
#[derive(Clone)]
struct Subkey {
    kid: String,
    bytes: Vec<u8>,
    keyed: HmacSha256,
    /// The keyed-BLAKE3 key of queue tokens, derived under a label of its
    /// own (`None` for the other kinds).
    fast: Option<[u8; 32]>,
}

impl Subkey {
    /// The fast MAC of `signed`, cut to [`FAST_TAG_LEN`] bytes.
    fn fast_tag(&self, signed: &str) -> Option<[u8; FAST_TAG_LEN]> {
        let key = self.fast.as_ref()?;
        let full = blake3::keyed_hash(key, signed.as_bytes());
        let mut tag = [0; FAST_TAG_LEN];
        tag.copy_from_slice(&full.as_bytes()[..FAST_TAG_LEN]);
        Some(tag)
    }

    /// Checks a fast MAC in constant time; the tag is decoded on the stack.
    fn verify_fast(&self, signed: &str, tag: &str) -> Result<(), TokenError> {
        use subtle::ConstantTimeEq;
        let mut given = [0u8; FAST_TAG_LEN];
        match b64::decode(tag.as_bytes(), &mut given) {
            Some(FAST_TAG_LEN) => {}
            _ => return Err(TokenError::BadSignature),
        }
        let expected = self.fast_tag(signed).ok_or(TokenError::BadSignature)?;
        if bool::from(expected.ct_eq(&given)) {
            Ok(())
        } else {
            Err(TokenError::BadSignature)
        }
    }
}

impl KeySet {
    fn derive(entries: &[(String, Vec<u8>)], purpose: Purpose) -> KeySet {
        KeySet {
            keys: entries
                .iter()
                .map(|(kid, secret)| {
                    let bytes = purpose.subkey(secret);
                    let fast = matches!(purpose, Purpose::Queue)
                        .then(|| Purpose::QueueFast.subkey(secret))
                        .and_then(|k| k.try_into().ok());
                    Subkey {
                        kid: kid.clone(),
                        keyed: Keyring::mac(&bytes),
                        bytes,
                        fast,
                    }
                })
                .collect(),
        }
    }

    fn active(&self) -> Option<&Subkey> {
        self.keys.first()
    }

    fn get(&self, kid: &str) -> Option<&Subkey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    fn key(&self, kid: &str) -> Option<&[u8]> {
        self.get(kid).map(|k| k.bytes.as_slice())
    }

    fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.kid.as_str()).collect()
    }
}

/// What a subkey is for; its label is mixed into the key.
#[derive(Debug, Clone, Copy)]
enum Purpose {
    Queue,
    Pass,
    Session,
    /// Keyed BLAKE3 of queue tokens ([`QueueFormat::Fast`]).
    QueueFast,
    /// Deriving command ids from idempotency keys (from a pass subkey).
    CommandId,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Queue => b"sluice/v1/queue",
            Purpose::Pass => b"sluice/v1/pass",
            Purpose::Session => b"sluice/v1/session",
            Purpose::QueueFast => b"sluice/v2/queue-blake3",
            Purpose::CommandId => b"sluice/v1/command-id",
        }
    }

    /// `HMAC-SHA256(secret, label || 0x01)`: HKDF-Expand of one block, the
    /// configured secret (random, at least 32 bytes) serving as the PRK.
    fn subkey(self, secret: &[u8]) -> Vec<u8> {
        let mut mac = Keyring::mac(secret);
        mac.update(self.label());
        mac.update(&[1]);
        mac.finalize().into_bytes().to_vec()
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("queue", &self.queue.kids())
            .field("pass", &self.pass.kids())
            .field("session", &self.session.kids())
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

/// Parses `kid:secret[,kid:secret...]` into (kid, secret) pairs.
fn parse_spec(spec: &str) -> Result<Vec<(String, Vec<u8>)>, KeySpecError> {
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
    if keys.is_empty() {
        return Err(KeySpecError::Empty);
    }
    Ok(keys)
}

impl Keyring {
    /// Parses `kid:secret[,kid:secret...]`: every kind's subkeys derive from
    /// these secrets (at least 32 bytes); the first key signs, all verify.
    pub fn from_spec(spec: &str) -> Result<Keyring, KeySpecError> {
        let entries = parse_spec(spec)?;
        Ok(Keyring {
            queue: KeySet::derive(&entries, Purpose::Queue),
            pass: KeySet::derive(&entries, Purpose::Pass),
            session: KeySet::derive(&entries, Purpose::Session),
            queue_format: QueueFormat::Fast,
        })
    }

    /// A keyring for passes alone, from the pass keys' spec (the worker's):
    /// it opens passes signed by a gateway given the same spec, and holds no
    /// key for queue tokens or sessions (what it signs of those kinds, no
    /// keyring accepts).
    pub fn pass_only(spec: &str) -> Result<Keyring, KeySpecError> {
        let entries = parse_spec(spec)?;
        Ok(Keyring {
            queue: KeySet::default(),
            pass: KeySet::derive(&entries, Purpose::Pass),
            session: KeySet::default(),
            queue_format: QueueFormat::Fast,
        })
    }

    /// This keyring with its pass keys taken from a spec of their own, so
    /// that what the worker is given cannot sign queue tokens or sessions.
    pub fn with_pass_keys(self, spec: &str) -> Result<Keyring, KeySpecError> {
        let entries = parse_spec(spec)?;
        Ok(Keyring {
            pass: KeySet::derive(&entries, Purpose::Pass),
            ..self
        })
    }

    /// The id of the key that signs new passes.
    pub fn active_kid(&self) -> &str {
        self.pass.active().map(|k| k.kid.as_str()).unwrap_or("")
    }

    /// Key ids per kind, signing one first, for the start-up log (which
    /// rotation step a pod is at).
    pub fn describe(&self) -> String {
        format!(
            "queue [{}], pass [{}], session [{}]",
            self.queue.kids().join(","),
            self.pass.kids().join(","),
            self.session.kids().join(",")
        )
    }

    fn mac(key: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length.
        HmacSha256::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("hmac accepts any key length"))
    }

    fn sign_claims<C: Serialize>(set: &KeySet, claims: &C) -> String {
        Self::sign_payload(set, &serde_json::to_vec(claims).unwrap_or_default())
    }

    fn sign_payload(set: &KeySet, payload: &[u8]) -> String {
        let payload = B64.encode(payload);
        let Some(key) = set.active() else {
            // No key for this kind: a token no keyring accepts (no key has
            // an empty id).
            return format!(".{payload}.");
        };
        let signed = format!("{}.{payload}", key.kid);
        let mut mac = key.keyed.clone();
        mac.update(signed.as_bytes());
        let tag = B64.encode(mac.finalize().into_bytes());
        format!("{signed}.{tag}")
    }

    /// The payload bytes of a token whose tag verifies.
    fn open_payload(set: &KeySet, token: &str) -> Result<Vec<u8>, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (signed, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (kid, payload) = signed.split_once('.').ok_or(TokenError::Malformed)?;
        let key = set.get(kid).ok_or(TokenError::UnknownKey)?;
        let tag = B64.decode(tag).map_err(|_| TokenError::Malformed)?;
        let mut mac = key.keyed.clone();
        mac.update(signed.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        B64.decode(payload).map_err(|_| TokenError::Malformed)
    }

    fn open_claims<C: DeserializeOwned>(set: &KeySet, token: &str) -> Result<C, TokenError> {
        let json = Self::open_payload(set, token)?;
        serde_json::from_slice(&json).map_err(|_| TokenError::WrongKind)
    }

    /// Signs a queue token in this keyring's [`QueueFormat`] (the fast one
    /// unless told otherwise, [`Keyring::with_queue_format`]).
    pub fn sign_queue(&self, claims: &QueueClaims) -> String {
        match self.queue_format {
            QueueFormat::Fast => {
                if let Some(token) = self.sign_queue_fast(claims) {
                    return token;
                }
            }
            QueueFormat::Hmac => {
                if let Some(payload) = compact::encode_queue(claims, compact::QUEUE_V1) {
                    return Self::sign_payload(&self.queue, &payload);
                }
            }
            QueueFormat::Json => {}
        }
        Self::sign_claims(
            &self.queue,
            &Tagged {
                k: Kind::Queue,
                c: claims,
            },
        )
    }

    fn sign_queue_fast(&self, claims: &QueueClaims) -> Option<String> {
        let payload = compact::encode_queue(claims, compact::QUEUE_FAST)?;
        let key = self.queue.active()?;
        let signed = format!("{}.{}", key.kid, B64.encode(payload));
        let tag = B64.encode(key.fast_tag(&signed)?);
        Some(format!("{signed}.{tag}"))
    }

    /// This keyring writing queue tokens in `format`. Every build reads the
    /// forms older than itself: while a fleet is upgraded, its new pods
    /// write what the old ones read ([`QueueFormat::Hmac`] over pods from
    /// before the fast MAC, [`QueueFormat::Json`] over pods from before the
    /// compact encoding), then the setting is dropped.
    pub fn with_queue_format(self, format: QueueFormat) -> Keyring {
        Keyring {
            queue_format: format,
            ..self
        }
    }

    /// Signs an admission pass.
    pub fn sign_pass(&self, claims: &PassClaims) -> String {
        Self::sign_claims(
            &self.pass,
            &Tagged {
                k: Kind::Pass,
                c: claims,
            },
        )
    }

    /// Verifies a queue token's signature and expiry at `now_ms`.
    ///
    /// The payload is decoded on the stack and its first byte says which MAC
    /// signed it: [`compact::QUEUE_FAST`] under keyed BLAKE3, anything else
    /// (compact or JSON, from earlier builds or an upgrade) under
    /// HMAC-SHA256, which never accepts a fast payload.
    pub fn verify_queue(&self, token: &str, now_ms: u64) -> Result<QueueClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (signed, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (kid, payload) = signed.split_once('.').ok_or(TokenError::Malformed)?;
        let key = self.queue.get(kid).ok_or(TokenError::UnknownKey)?;
        let mut buf = [0u8; compact::MAX_LEN];
        let claims = match b64::decode(payload.as_bytes(), &mut buf) {
            Some(n) if buf[..n].first() == Some(&compact::QUEUE_FAST) => {
                key.verify_fast(signed, tag)?;
                compact::decode_queue(&buf[..n], compact::QUEUE_FAST)
                    .map_err(|_| TokenError::WrongKind)?
            }
            _ => {
                let payload = Self::open_payload(&self.queue, token)?;
                if payload.first() == Some(&b'{') {
                    let t: Tagged<QueueClaims> =
                        serde_json::from_slice(&payload).map_err(|_| TokenError::WrongKind)?;
                    if t.k != Kind::Queue {
                        return Err(TokenError::WrongKind);
                    }
                    t.c
                } else {
                    compact::decode_queue(&payload, compact::QUEUE_V1)
                        .map_err(|_| TokenError::WrongKind)?
                }
            }
        };
        if now_ms >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// Verifies a pass's signature only; the caller decides which instant
    /// the expiry is judged at (see [`PassClaims::check`]).
    pub fn open_pass(&self, token: &str) -> Result<PassClaims, TokenError> {
        let t: Tagged<PassClaims> = Self::open_claims(&self.pass, token)?;
        if t.k != Kind::Pass {
            return Err(TokenError::WrongKind);
        }
        Ok(t.c)
    }

    /// Signs a login session.
    pub fn sign_session(&self, claims: &SessionClaims) -> String {
        Self::sign_claims(
            &self.session,
            &Tagged {
                k: Kind::Session,
                c: claims,
            },
        )
    }

    /// Verifies a login session's signature and expiry at `now_ms`.
    pub fn verify_session(&self, token: &str, now_ms: u64) -> Result<SessionClaims, TokenError> {
        let t: Tagged<SessionClaims> = Self::open_claims(&self.session, token)?;
        if t.k != Kind::Session {
            return Err(TokenError::WrongKind);
        }
        if now_ms >= t.c.exp {
            return Err(TokenError::Expired);
        }
        Ok(t.c)
    }

    /// The command id for a request sent with an idempotency key under the
    /// admission `pass` (which must verify): the same pass, key and request
    /// bytes give the same id on every gateway, with no shared state, so a
    /// retry names the command a first attempt may already have queued.
    /// Keyed with a subkey of the key that signed the pass, so it holds
    /// across a rotation, and no one without that key can predict ids.
    pub fn command_id(
        &self,
        pass: &str,
        key: &str,
        request: &[u8],
    ) -> Result<uuid::Uuid, TokenError> {
        let claims = self.open_pass(pass)?;
        let kid = pass.split('.').next().unwrap_or_default();
        let pass_key = self.pass.key(kid).ok_or(TokenError::UnknownKey)?;
        let mut mac = Self::mac(&Purpose::CommandId.subkey(pass_key));
        mac.update(claims.lease.as_bytes());
        mac.update(&claims.student.0.to_be_bytes());
        // Lengths first, so no two (key, request) pairs share an input.
        mac.update(&(key.len() as u64).to_be_bytes());
        mac.update(key.as_bytes());
        mac.update(&(request.len() as u64).to_be_bytes());
        mac.update(request);
        let digest = mac.finalize().into_bytes();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Ok(uuid::Builder::from_custom_bytes(bytes).into_uuid())
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

/// The variable naming a file that holds the pass keys' spec: the worker's
/// only key (see [`Keyring::pass_only`]); a gateway reads it too.
pub const PASS_KEYS_FILE_ENV: &str = "SLUICE_PASS_KEYS_FILE";

/// The key spec from the file named by [`KEYS_FILE_ENV`], trimmed; `None`
/// when the variable is not set.
pub fn key_spec_from_file() -> Option<std::io::Result<String>> {
    key_spec_from_env_file(KEYS_FILE_ENV)
}

/// The key spec from the file named by the variable `var`, trimmed; `None`
/// when the variable is not set.
pub fn key_spec_from_env_file(var: &str) -> Option<std::io::Result<String>> {
    let path = std::env::var(var).ok()?;
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

    /// The wire format, computed from scratch: the tag is
    /// HMAC-SHA256(HMAC-SHA256(secret, label || 1), "kid.payload"). Tokens
    /// signed by pods of another build must keep verifying, however the
    /// keyed state is kept.
    #[test]
    fn tags_are_hmac_of_the_purpose_subkey_from_scratch() {
        let ring = Keyring::from_spec(K1).unwrap();
        let token = ring.sign_pass(&pass());
        let (signed, tag) = token.rsplit_once('.').unwrap();
        assert!(signed.starts_with("k1."));
        let secret = &K1.as_bytes()[3..];
        let mut sub = HmacSha256::new_from_slice(secret).unwrap();
        sub.update(b"sluice/v1/pass");
        sub.update(&[1]);
        let sub = sub.finalize().into_bytes();
        let mut mac = HmacSha256::new_from_slice(&sub).unwrap();
        mac.update(signed.as_bytes());
        assert_eq!(tag, B64.encode(mac.finalize().into_bytes()));
        // And a token tagged from scratch verifies.
        assert_eq!(
            ring.verify_pass(&token, StudentId(42), RoundId(3), 2_000),
            Ok(pass())
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
        assert_eq!(ring.open_pass(&token), Err(TokenError::BadSignature));
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
            Err(TokenError::BadSignature)
        );
    }

    fn queue_claims() -> QueueClaims {
        QueueClaims {
            round: RoundId(3),
            student: StudentId(2_027_000_123),
            seq: 48_213,
            order_key: Some(1 << 40),
            mark_at_join: 40_000,
            iat: 1_764_748_800_000,
            exp: 1_764_759_600_000,
        }
    }

    /// Queue tokens are written compactly under the fast MAC, and tokens
    /// written by earlier builds or during an upgrade (compact or JSON
    /// under HMAC-SHA256) still verify, so a mixed fleet never refuses a
    /// place.
    #[test]
    fn queue_tokens_are_fast_and_earlier_forms_still_verify() {
        let ring = Keyring::from_spec(K1).unwrap();
        let q = queue_claims();
        let fast = ring.sign_queue(&q);
        let hmac = ring
            .clone()
            .with_queue_format(QueueFormat::Hmac)
            .sign_queue(&q);
        let json = ring
            .clone()
            .with_queue_format(QueueFormat::Json)
            .sign_queue(&q);
        assert!(json.split('.').nth(1).unwrap().starts_with("ey"), "{json}");
        // The fast form's signed text is one BLAKE3 block, and its tag is
        // 128 bits; the HMAC form's text fits one SHA-256 block.
        let (signed, tag) = fast.rsplit_once('.').unwrap();
        assert!(signed.len() <= 64, "{} bytes: {signed}", signed.len());
        assert_eq!(B64.decode(tag).unwrap().len(), FAST_TAG_LEN);
        assert!(hmac.rsplit_once('.').unwrap().0.len() <= 55);
        assert!(fast.len() < hmac.len() && hmac.len() < json.len());
        for token in [&fast, &hmac, &json] {
            assert_eq!(ring.verify_queue(token, 1_764_748_800_001), Ok(q.clone()));
            assert_eq!(ring.verify_queue(token, q.exp), Err(TokenError::Expired));
        }
    }

    /// The fast tag is keyed BLAKE3 of `KID.PAYLOAD`, under a key derived
    /// from the secret with a label of its own, computed here from scratch.
    #[test]
    fn fast_tags_are_keyed_blake3_of_their_own_subkey_from_scratch() {
        let ring = Keyring::from_spec(K1).unwrap();
        let token = ring.sign_queue(&queue_claims());
        let (signed, tag) = token.rsplit_once('.').unwrap();
        let payload = B64.decode(signed.split_once('.').unwrap().1).unwrap();
        assert_eq!(payload[0], compact::QUEUE_FAST);
        let mut sub = HmacSha256::new_from_slice(&K1.as_bytes()[3..]).unwrap();
        sub.update(b"sluice/v2/queue-blake3");
        sub.update(&[1]);
        let key: [u8; 32] = sub.finalize().into_bytes().into();
        let full = blake3::keyed_hash(&key, signed.as_bytes());
        assert_eq!(tag, B64.encode(&full.as_bytes()[..16]));
        // Not the queue HMAC subkey's bytes: the purposes stay apart.
        assert_ne!(key.as_slice(), Purpose::Queue.subkey(&K1.as_bytes()[3..]));
    }

    /// Fast queue tokens follow key rotation like every kind: signed by the
    /// old key, they verify while a ring lists it after the new one, and
    /// not once it is gone; the new key's tokens mean nothing to the old.
    #[test]
    fn fast_queue_tokens_follow_rotation() {
        let q = queue_claims();
        let old = Keyring::from_spec(K0).unwrap();
        let both = Keyring::from_spec(&format!("{K1},{K0}")).unwrap();
        let new = Keyring::from_spec(K1).unwrap();
        let token = old.sign_queue(&q);
        assert!(token.starts_with("k0."), "{token}");
        assert_eq!(both.verify_queue(&token, q.iat), Ok(q.clone()));
        assert_eq!(new.verify_queue(&token, q.iat), Err(TokenError::UnknownKey));
        let renewed = both.sign_queue(&q);
        assert!(renewed.starts_with("k1."), "{renewed}");
        assert_eq!(
            old.verify_queue(&renewed, q.iat),
            Err(TokenError::UnknownKey)
        );
        // The old key id on the new key's tag is a forgery.
        let forged = format!("k0{}", &renewed[2..]);
        assert_eq!(
            both.verify_queue(&forged, q.iat),
            Err(TokenError::BadSignature)
        );
    }

    /// The payload's first byte picks the MAC, but only ever the MAC that
    /// signed it: a fast payload under an HMAC tag, or an HMAC-era payload
    /// under a fast tag, is refused, even with the right keys.
    #[test]
    fn a_payload_verifies_only_under_the_mac_its_tag_names() {
        let ring = Keyring::from_spec(K1).unwrap();
        let q = queue_claims();
        let fast_payload = compact::encode_queue(&q, compact::QUEUE_FAST).unwrap();
        let v1_payload = compact::encode_queue(&q, compact::QUEUE_V1).unwrap();
        let fast_under_hmac = Keyring::sign_payload(&ring.queue, &fast_payload);
        assert_eq!(
            ring.verify_queue(&fast_under_hmac, q.iat),
            Err(TokenError::BadSignature)
        );
        let key = ring.queue.active().unwrap();
        let signed = format!("{}.{}", key.kid, B64.encode(&v1_payload));
        let v1_under_fast = format!("{signed}.{}", B64.encode(key.fast_tag(&signed).unwrap()));
        assert_eq!(
            ring.verify_queue(&v1_under_fast, q.iat),
            Err(TokenError::BadSignature)
        );
        // A truncated or padded fast tag is refused too.
        let good = ring.sign_queue(&q);
        for bad in [&good[..good.len() - 1], &format!("{good}A")] {
            assert_eq!(ring.verify_queue(bad, q.iat), Err(TokenError::BadSignature));
        }
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
        // Each kind has its own subkey: a token of another kind does not
        // even verify (the kind inside the claims is a second line).
        assert_eq!(ring.open_pass(&qt), Err(TokenError::BadSignature));
        let pt = ring.sign_pass(&pass());
        assert_eq!(ring.verify_queue(&pt, 1), Err(TokenError::BadSignature));
    }

    const PASS_K1: &str = "p1:a-secret-for-passes-alone-0123456789abcdef";

    #[test]
    fn a_pass_key_signs_passes_and_nothing_else() {
        let gateway = Keyring::from_spec(K1)
            .unwrap()
            .with_pass_keys(PASS_K1)
            .unwrap();
        let worker = Keyring::pass_only(PASS_K1).unwrap();
        let pt = gateway.sign_pass(&pass());
        assert_eq!(worker.open_pass(&pt), Ok(pass()));
        assert_eq!(
            Keyring::pass_only(K1).unwrap().open_pass(&pt),
            Err(TokenError::UnknownKey),
            "passes are signed with the pass key, not the main one"
        );

        // What the worker holds, used every way an attacker could.
        let session = SessionClaims::new(
            Subject::Admin {
                id: 1,
                username: "registrar".into(),
                role: "registrar".into(),
            },
            1_000,
            60_000,
        );
        let q = QueueClaims {
            round: RoundId(3),
            student: StudentId(42),
            seq: 1,
            order_key: None,
            mark_at_join: 0,
            iat: 1_000,
            exp: 60_000,
        };
        for attacker in [worker.clone(), Keyring::from_spec(PASS_K1).unwrap()] {
            assert!(gateway
                .verify_session(&attacker.sign_session(&session), 2_000)
                .is_err());
            assert!(gateway
                .verify_queue(&attacker.sign_queue(&q), 2_000)
                .is_err());
        }
        // The gateway's own sessions and queue tokens still work, and the
        // worker cannot open them.
        let st = gateway.sign_session(&session);
        assert_eq!(gateway.verify_session(&st, 2_000), Ok(session));
        assert!(worker.verify_session(&st, 2_000).is_err());
        assert!(!format!("{worker:?}").contains("k1"));

        // Without separate pass keys, the worker's pass-only keyring from
        // the same spec still matches the gateway (developer machines).
        let plain = Keyring::from_spec(K1).unwrap();
        let worker = Keyring::pass_only(K1).unwrap();
        assert_eq!(worker.open_pass(&plain.sign_pass(&pass())), Ok(pass()));
        assert!(plain
            .verify_session(
                &worker.sign_session(&SessionClaims::new(
                    Subject::Student {
                        id: StudentId(1),
                        class_year: 1
                    },
                    1_000,
                    60_000
                )),
                2_000
            )
            .is_err());
    }

    /// The documented rotation: each step is rolled out to every pod
    /// before the next starts, so at any moment pods run two adjacent
    /// steps. Whatever one signs, the other accepts.
    #[test]
    fn three_step_rotation_never_meets_an_unknown_key() {
        let steps = [
            K0.to_string(),       // before: k0 signs
            format!("{K0},{K1}"), // 1: k1 added, verifies only
            format!("{K1},{K0}"), // 2: k1 signs, k0 still verifies
            K1.to_string(),       // 3: k0 retired
        ];
        let claims = pass();
        for pair in steps.windows(2) {
            for (signer, verifier) in [(&pair[0], &pair[1]), (&pair[1], &pair[0])] {
                let (signer, verifier) = (
                    Keyring::from_spec(signer).unwrap(),
                    Keyring::pass_only(verifier).unwrap(),
                );
                assert_eq!(
                    verifier.open_pass(&signer.sign_pass(&claims)),
                    Ok(claims.clone()),
                    "signed at {signer:?}, verified at {verifier:?}"
                );
            }
        }
        // The old one-step procedure (new key first, at once): a worker
        // not yet restarted meets a key it does not know.
        let gateway = Keyring::from_spec(&steps[2]).unwrap();
        let worker = Keyring::pass_only(&steps[0]).unwrap();
        assert_eq!(
            worker.open_pass(&gateway.sign_pass(&claims)),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn command_ids_follow_the_pass_key_and_the_request() {
        let ring = Keyring::from_spec(K1).unwrap();
        let pt = ring.sign_pass(&pass());
        let id = ring.command_id(&pt, "k-1", b"enroll 7").unwrap();
        assert_eq!(ring.command_id(&pt, "k-1", b"enroll 7").unwrap(), id);
        // Another gateway, mid-rotation, with the same key among others.
        let other = Keyring::from_spec(&format!("{K0},{K1}")).unwrap();
        assert_eq!(other.command_id(&pt, "k-1", b"enroll 7").unwrap(), id);
        assert_ne!(ring.command_id(&pt, "k-2", b"enroll 7").unwrap(), id);
        assert_ne!(ring.command_id(&pt, "k-1", b"enroll 8").unwrap(), id);
        assert_ne!(ring.command_id(&pt, "k-1e", b"nroll 7").unwrap(), id);
        let next = ring.sign_pass(&PassClaims {
            lease: uuid::Uuid::from_u128(8),
            ..pass()
        });
        assert_ne!(ring.command_id(&next, "k-1", b"enroll 7").unwrap(), id);
        assert_eq!(id.get_version_num(), 8);
        let stranger = Keyring::from_spec(K0).unwrap();
        assert!(stranger.command_id(&pt, "k-1", b"enroll 7").is_err());
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
                prop_assert_eq!(ring.verify_queue(t, iat), Err(TokenError::BadSignature));
            }
            for t in [&qt, &st] {
                prop_assert_eq!(ring.open_pass(t), Err(TokenError::BadSignature));
            }
            for t in [&qt, &pt] {
                prop_assert_eq!(ring.verify_session(t, iat), Err(TokenError::BadSignature));
            }
            for t in [&qt, &pt, &st] {
                prop_assert_eq!(stranger.open_pass(t), Err(TokenError::UnknownKey));
            }
        }

        #[test]
        fn any_single_byte_change_of_a_queue_token_is_refused(
            idx in any::<prop::sample::Index>(), byte in any::<u8>(), form in 0..3usize,
        ) {
            let format = [QueueFormat::Fast, QueueFormat::Hmac, QueueFormat::Json][form];
            let ring = Keyring::from_spec(K1).unwrap().with_queue_format(format);
            let q = queue_claims();
            let token = ring.sign_queue(&q);
            let mut bytes = token.clone().into_bytes();
            let i = idx.index(bytes.len());
            prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            if let Ok(t) = String::from_utf8(bytes) {
                prop_assert!(ring.verify_queue(&t, q.iat).is_err(), "changed token {} accepted", t);
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
