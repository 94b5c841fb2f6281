//! Feeds arbitrary strings to every token verifier: none may panic, and
//! nothing but a token signed with the key may verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waitroom::Keyring;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ring = Keyring::from_spec("f1:fuzzing-key-0123456789abcdef0123456789")
        .unwrap_or_else(|_| unreachable!("the fuzzing key is valid"));
    // A random input that verifies would be a forged token.
    assert!(ring.open_pass(text).is_err());
    assert!(ring.verify_queue(text, 0).is_err());
    assert!(ring.verify_session(text, 0).is_err());
});
