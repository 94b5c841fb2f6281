//! Strict base64url without padding, decoded on a status poll's path.
//!
//! A poll decodes a queue token's payload and tag: about sixty characters.
//! The general decoder spends most of its work on set-up and on the
//! chunking meant for long inputs (about 800 instructions a poll); this one
//! is a table look-up per character. It accepts exactly what the general
//! decoder (`URL_SAFE_NO_PAD`, which refuses padding and stray bits in the
//! last character) accepts, and the tests hold it to that.

/// Marks a byte outside the alphabet (the high bits of every value in
/// the alphabet are clear).
const INVALID: u8 = 0xff;

/// The value of each byte of the alphabet `A-Z a-z 0-9 - _`.
static VALUES: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 26 {
        t[b'A' as usize + i] = i as u8;
        t[b'a' as usize + i] = 26 + i as u8;
        i += 1;
    }
    let mut d = 0;
    while d < 10 {
        t[b'0' as usize + d] = 52 + d as u8;
        d += 1;
    }
    t[b'-' as usize] = 62;
    t[b'_' as usize] = 63;
    t
};

/// Decodes `text` into the start of `out` and returns the length written,
/// or `None` when `text` is not canonical unpadded base64url or its bytes
/// do not fit in `out`.
pub(crate) fn decode(text: &[u8], out: &mut [u8]) -> Option<usize> {
    let tail = text.len() % 4;
    if tail == 1 {
        return None;
    }
    let len = text.len() / 4 * 3 + tail.saturating_sub(1);
    let out = out.get_mut(..len)?;
    let (quads, rest) = text.split_at(text.len() - tail);
    let (whole, last) = out.split_at_mut(quads.len() / 4 * 3);
    for (q, o) in quads.chunks_exact(4).zip(whole.chunks_exact_mut(3)) {
        let (a, b, c, d) = (
            VALUES[usize::from(q[0])],
            VALUES[usize::from(q[1])],
            VALUES[usize::from(q[2])],
            VALUES[usize::from(q[3])],
        );
        if (a | b | c | d) & 0xc0 != 0 {
            return None;
        }
        let v = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
        o[0] = (v >> 16) as u8;
        o[1] = (v >> 8) as u8;
        o[2] = v as u8;
    }
    match *rest {
        [] => {}
        [x, y] => {
            let (a, b) = (VALUES[usize::from(x)], VALUES[usize::from(y)]);
            // The last character's low four bits carry nothing: set, the
            // text is not the canonical form of any bytes.
            if (a | b) & 0xc0 != 0 || b & 0x0f != 0 {
                return None;
            }
            last[0] = a << 2 | b >> 4;
        }
        [x, y, z] => {
            let (a, b, c) = (
                VALUES[usize::from(x)],
                VALUES[usize::from(y)],
                VALUES[usize::from(z)],
            );
            if (a | b | c) & 0xc0 != 0 || c & 0x03 != 0 {
                return None;
            }
            last[0] = a << 2 | b >> 4;
            last[1] = b << 4 | c >> 2;
        }
        _ => return None,
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use proptest::prelude::*;

    /// What the general decoder makes of `text`, into a buffer at least as
    /// long as any answer (the input's length is more than enough).
    fn general(text: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![0u8; text.len()];
        URL_SAFE_NO_PAD
            .decode_slice(text, &mut out)
            .ok()
            .map(|n| out[..n].to_vec())
    }

    fn ours(text: &[u8], room: usize) -> Option<Vec<u8>> {
        let mut out = vec![0u8; room];
        decode(text, &mut out).map(|n| out[..n].to_vec())
    }

    #[test]
    fn known_texts() {
        assert_eq!(ours(b"", 4), Some(vec![]));
        assert_eq!(ours(b"AQ", 4), Some(vec![1]));
        assert_eq!(ours(b"AQI", 4), Some(vec![1, 2]));
        assert_eq!(ours(b"AQID", 4), Some(vec![1, 2, 3]));
        assert_eq!(ours(b"-_-_", 4), Some(vec![0xfb, 0xff, 0xbf]));
        // Stray bits in the last character, padding, the standard
        // alphabet's characters, a lone character, too little room.
        assert_eq!(ours(b"AR", 4), None);
        assert_eq!(ours(b"AQJ", 4), None);
        assert_eq!(ours(b"AQ==", 4), None);
        assert_eq!(ours(b"+/+/", 4), None);
        assert_eq!(ours(b"AQIDB", 8), None);
        assert_eq!(ours(b"AQID", 2), None);
    }

    proptest! {
        /// Every byte string comes back from its encoding.
        #[test]
        fn decodes_what_the_encoder_wrote(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            let text = URL_SAFE_NO_PAD.encode(&bytes);
            prop_assert_eq!(ours(text.as_bytes(), bytes.len()), Some(bytes));
        }

        /// Any text, mostly of the alphabet, with any room: the same answer
        /// as the general decoder, refusals included, and a refusal when
        /// the bytes do not fit.
        #[test]
        fn agrees_with_the_general_decoder(
            text in "[A-Za-z0-9_=+/.-]{0,70}",
            room in 0usize..60,
        ) {
            let expected = general(text.as_bytes()).filter(|v| v.len() <= room);
            prop_assert_eq!(ours(text.as_bytes(), room), expected);
        }

        /// Texts one character away from a valid one.
        #[test]
        fn agrees_on_damaged_encodings(
            bytes in proptest::collection::vec(any::<u8>(), 1..64),
            at in any::<prop::sample::Index>(),
            with in any::<u8>(),
        ) {
            let mut text = URL_SAFE_NO_PAD.encode(&bytes).into_bytes();
            let i = at.index(text.len());
            text[i] = with;
            prop_assert_eq!(ours(&text, 64), general(&text));
        }
    }
}
