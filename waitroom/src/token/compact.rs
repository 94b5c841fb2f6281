//! The compact encoding of queue-token claims.
//!
//! Every waiting student's poll opens a queue token, so its payload is the
//! one the system reads most. As JSON it is about 95 bytes and the signed
//! text spans three SHA-256 blocks; this encoding is a version byte and
//! seven LEB128 integers, usually under 32 bytes, and the whole signed text
//! (`kid.payload`) fits in one block, with no JSON to parse.
//!
//! Layout: a tag byte, then `round`, `student`,
//! `seq`, `order_key + 1` (0 when there is none), `mark_at_join`, `iat` and
//! `exp - iat`, each an unsigned LEB128 of at most 10 bytes, nothing after.
//! The tag names the MAC that signs the token: `0x01` HMAC-SHA256 (the
//! first compact tokens), `0x02` keyed BLAKE3 (see the parent module). A
//! JSON payload starts with `{`, so a reader tells all three apart by the
//! first byte and accepts each (tokens signed before a change keep
//! working); decoding is strict: the tag the caller expects, no overlong or
//! overflowing integers, no missing field, no trailing bytes.

use super::QueueClaims;
use enrollment::{RoundId, StudentId};

/// The first byte of a compact queue payload signed with HMAC-SHA256.
pub const QUEUE_V1: u8 = 0x01;

/// The first byte of a compact queue payload signed with keyed BLAKE3.
pub const QUEUE_FAST: u8 = 0x02;

/// The longest compact payload: the tag and seven 10-byte integers.
pub const MAX_LEN: usize = 1 + 7 * 10;

/// Why bytes are not compact queue claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

/// Encodes queue claims compactly; `None` for the claims this layout cannot
/// carry exactly (an order key of `u64::MAX`, an expiry before issue), which
/// the caller then writes as JSON.
pub fn encode_queue(c: &QueueClaims, tag: u8) -> Option<Vec<u8>> {
    if c.order_key == Some(u64::MAX) || c.exp < c.iat {
        return None;
    }
    let mut out = Vec::with_capacity(32);
    out.push(tag);
    for v in [
        u64::from(c.round.0),
        u64::from(c.student.0),
        c.seq,
        c.order_key.map_or(0, |k| k + 1),
        c.mark_at_join,
        c.iat,
        c.exp - c.iat,
    ] {
        put(&mut out, v);
    }
    Some(out)
}

/// Decodes what [`encode_queue`] wrote with `expected` as its tag.
pub fn decode_queue(bytes: &[u8], expected: u8) -> Result<QueueClaims, Invalid> {
    let (&tag, mut rest) = bytes.split_first().ok_or(Invalid)?;
    if tag != expected {
        return Err(Invalid);
    }
    let mut next = || take(&mut rest);
    let round = u32::try_from(next()?).map_err(|_| Invalid)?;
    let student = u32::try_from(next()?).map_err(|_| Invalid)?;
    let seq = next()?;
    let order_key = next()?.checked_sub(1);
    let mark_at_join = next()?;
    let iat = next()?;
    let exp = iat.checked_add(next()?).ok_or(Invalid)?;
    if !rest.is_empty() {
        return Err(Invalid);
    }
    Ok(QueueClaims {
        round: RoundId(round),
        student: StudentId(student),
        seq,
        order_key,
        mark_at_join,
        iat,
        exp,
    })
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take(rest: &mut &[u8]) -> Result<u64, Invalid> {
    let mut v = 0u64;
    for (i, &b) in rest.iter().enumerate().take(10) {
        let bits = u64::from(b & 0x7f);
        // The tenth byte may carry only the top bit of a u64.
        if i == 9 && bits > 1 {
            return Err(Invalid);
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            // One encoding per value: no trailing zero groups.
            if i > 0 && b == 0 {
                return Err(Invalid);
            }
            *rest = &rest[i + 1..];
            return Ok(v);
        }
    }
    Err(Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn claims() -> QueueClaims {
        QueueClaims {
            round: RoundId(3),
            student: StudentId(2_027_000_123),
            seq: 48_213,
            order_key: Some(u64::MAX - 7),
            mark_at_join: 40_000,
            iat: 1_764_748_800_000,
            exp: 1_764_748_800_000 + 3 * 3_600_000,
        }
    }

    #[test]
    fn a_typical_token_is_small_and_round_trips() {
        let bytes = encode_queue(&claims(), QUEUE_V1).unwrap();
        assert_eq!(decode_queue(&bytes, QUEUE_V1), Ok(claims()));
        // Without an order key (a pre-queue ticket) it is smaller still.
        let pre = QueueClaims {
            order_key: None,
            ..claims()
        };
        let small = encode_queue(&pre, QUEUE_V1).unwrap();
        assert!(small.len() <= 32, "{} bytes", small.len());
        assert_eq!(decode_queue(&small, QUEUE_V1), Ok(pre));
    }

    #[test]
    fn the_layout_is_pinned() {
        let c = QueueClaims {
            round: RoundId(1),
            student: StudentId(300),
            seq: 2,
            order_key: None,
            mark_at_join: 0,
            iat: 1,
            exp: 129,
        };
        assert_eq!(
            encode_queue(&c, QUEUE_V1).unwrap(),
            [QUEUE_V1, 1, 0xac, 0x02, 2, 0, 0, 1, 0x80, 0x01]
        );
    }

    #[test]
    fn claims_it_cannot_carry_exactly_are_left_to_json() {
        let top = QueueClaims {
            order_key: Some(u64::MAX),
            ..claims()
        };
        assert_eq!(encode_queue(&top, QUEUE_V1), None);
        let backwards = QueueClaims {
            exp: claims().iat - 1,
            ..claims()
        };
        assert_eq!(encode_queue(&backwards, QUEUE_V1), None);
    }

    #[test]
    fn malformed_bytes_are_refused() {
        let good = encode_queue(&claims(), QUEUE_V1).unwrap();
        for bad in [
            &[][..],
            &[b'{'][..],
            &[QUEUE_V1][..],
            &good[..good.len() - 1],
            // A tenth byte above 1 overflows a u64.
            &[
                QUEUE_V1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
            ][..],
            // Overlong zero.
            &[QUEUE_V1, 0x80, 0x00, 1, 1, 0, 0, 1, 1][..],
        ] {
            assert_eq!(decode_queue(bad, QUEUE_V1), Err(Invalid), "{bad:?}");
        }
        // A payload is read only under the tag its MAC was checked for.
        assert_eq!(decode_queue(&good, QUEUE_FAST), Err(Invalid));
        let fast = encode_queue(&claims(), QUEUE_FAST).unwrap();
        assert_eq!(fast[1..], good[1..]);
        assert_eq!(decode_queue(&fast, QUEUE_FAST), Ok(claims()));
        assert_eq!(decode_queue(&fast, QUEUE_V1), Err(Invalid));
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(decode_queue(&trailing, QUEUE_V1), Err(Invalid));
        // A round or student beyond u32 is refused, not truncated.
        let mut wide = vec![QUEUE_V1];
        put(&mut wide, u64::from(u32::MAX) + 1);
        for v in [1, 1, 0, 0, 1, 1] {
            put(&mut wide, v);
        }
        assert_eq!(decode_queue(&wide, QUEUE_V1), Err(Invalid));
    }

    proptest! {
        #[test]
        fn every_claim_round_trips(
            round in any::<u32>(), student in any::<u32>(), seq in any::<u64>(),
            order_key in proptest::option::of(0..u64::MAX), mark in any::<u64>(),
            iat in any::<u64>(), ttl in any::<u64>(),
        ) {
            let c = QueueClaims {
                round: RoundId(round), student: StudentId(student), seq, order_key,
                mark_at_join: mark, iat, exp: iat.saturating_add(ttl),
            };
            let bytes = encode_queue(&c, QUEUE_V1).unwrap();
            prop_assert!(bytes.len() <= MAX_LEN);
            prop_assert_eq!(decode_queue(&bytes, QUEUE_V1), Ok(c));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = decode_queue(&bytes, QUEUE_V1);
        }
    }
}
