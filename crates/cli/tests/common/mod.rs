//! Running the binary from the tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The binary under test: the one cargo built for these tests, or `TENSORCV_TEST_BIN` (a
/// static build, say), run through `TENSORCV_TEST_RUNNER` when that is set (`qemu-aarch64-static`
/// for an aarch64 binary on x86_64: `.ci/run` runs these tests so against both static builds).
pub fn command() -> Command {
    let bin = std::env::var_os("TENSORCV_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_tensorcv")));
    let runner = std::env::var("TENSORCV_TEST_RUNNER").unwrap_or_default();
    let mut runner = runner.split_whitespace();
    match runner.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(runner).arg(bin);
            c
        }
        None => Command::new(bin),
    }
}

/// How a shell runs the binary under test (for tests that need one, as `script` does).
pub fn shell_command() -> String {
    let c = command();
    std::iter::once(c.get_program())
        .chain(c.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `tensorcv ARGS` from the workspace root.
pub fn tensorcv(args: &[&str]) -> Output {
    command()
        .args(args)
        .current_dir(root())
        .output()
        .expect("the binary runs")
}

/// Standard output's lines as JSON values.
pub fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// A fresh scratch folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tensorcv-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary under test is a WASM build (`TENSORCV_TEST_TARGET=wasm32-wasip1`, run by
/// `tools/wasi_run.py`): one thread, no sockets, no signals, no `/proc`, and paths are UTF-8
/// strings (WASI's). Tests of what it lacks check its clear error instead.
pub fn wasm() -> bool {
    std::env::var("TENSORCV_TEST_TARGET").is_ok_and(|t| t.starts_with("wasm32"))
}

/// A WASM build has no sockets: an `http://` source (`what`: the URL, or `--serve`) is one clear
/// error naming it, exit 1, no panic.
pub fn no_network(o: &Output, what: &str) {
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains(what) && e.contains("no network support"), "{e}");
}
