#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tensorcv_fuzz_harness::install_hook(true);
    tensorcv_fuzz_harness::preview_http(data);
});
