//! Must crash within seconds: it proves that the fuzzer gets past byte-prefix comparisons (the smoke run fails if it
//! does not find this). Without `-Cllvm-args=-max-loads-per-memcmp=0` in RUSTFLAGS it does not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() >= 16 && data.starts_with(b"HMAC-SHA256 ") && &data[12..16] == b"Sig=" {
        panic!("canary reached: the fuzzer passes byte-prefix comparisons");
    }
});
