//! Feeds arbitrary bytes to the command decoder: it must never panic, and
//! whatever it accepts must re-encode to a command that decodes the same.
#![no_main]

use enrollment::Command;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cmd) = Command::decode(data) {
        let again = Command::decode(&cmd.encode());
        assert_eq!(again.as_ref(), Ok(&cmd));
    }
});
