//! Every input a fuzzer crashed on (`tests/data/fuzz/<target>/`, kept after the fix) and every
//! seed, replayed through its target: none may panic in tensorcv's own code.

use std::path::PathBuf;
use tensorcv_fuzz_harness::{install_hook, OWN_PANIC, TARGETS};

#[test]
fn every_kept_crash_stays_fixed() {
    install_hook(false);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/fuzz");
    let mut replayed = 0;
    for (name, target) in TARGETS {
        let dir = root.join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for file in files
            .iter()
            .filter(|f| f.extension().is_none_or(|e| e != "md"))
        {
            let data = std::fs::read(file).unwrap();
            let r = std::panic::catch_unwind(|| target(&data));
            assert!(r.is_ok(), "{name}: {} panicked", file.display());
            assert!(
                !OWN_PANIC.load(std::sync::atomic::Ordering::Relaxed),
                "{name}: {} panicked in tensorcv's code",
                file.display()
            );
            replayed += 1;
        }
    }
    println!("replayed {replayed} inputs");
    assert!(replayed > 0, "tests/data/fuzz holds the kept inputs");
}
