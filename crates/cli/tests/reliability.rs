//! The `tensorcv` binary against what users and hostile inputs do to it: a downstream that
//! goes away, a full disk, flag values at the extremes, corrupt models, cards and files,
//! network streams that misbehave. Each case ends with a clear message and the documented exit
//! code (0 done, 1 failed, 2 usage, 0 when standard output was closed by its reader), within a
//! few seconds, and never with a panic.

mod common;
use common::{no_network, root, scratch};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = common::command();
    c.current_dir(root()).env("RUST_BACKTRACE", "0");
    c
}

/// Run with a time bound; the output and how long it took.
fn run_within(mut c: Command, limit: Duration) -> (Output, Duration) {
    let t = Instant::now();
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let e = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let output = Output {
                status,
                stdout: o.join().unwrap(),
                stderr: e.join().unwrap(),
            };
            return (output, t.elapsed());
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}: {c:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn tensorcv(args: &[&str]) -> Output {
    let mut c = bin();
    c.args(args);
    run_within(c, Duration::from_secs(60)).0
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// No panic message, ever.
fn no_panic(o: &Output) {
    let e = stderr(o);
    assert!(
        !e.contains("panicked") && o.status.code() != Some(101),
        "a panic: {e}"
    );
}

#[test]
fn a_reader_that_goes_away_ends_the_run_quietly() {
    for args in [
        &["detect", "tests/data/capture/pan.avi", "--json"][..],
        &["detect", "tests/data/capture/pan.avi", "--output", "-"][..],
        &[
            "detect",
            "tests/data/capture/pan.avi",
            "--output",
            "-:bgr24",
        ][..],
        &["models"][..],
    ] {
        let t = Instant::now();
        let mut child = bin()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // read one line (or a few bytes), then close the pipe, as `| head -1` does
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = Vec::new();
        out.read_until(b'\n', &mut first).unwrap();
        assert!(!first.is_empty());
        drop(out);
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        println!("{args:?}: exit {status} after {:?}", t.elapsed());
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        if common::wasm() && status.code() == Some(1) {
            // the WASI host chooses the error a closed pipe is: wasmtime's Python API
            // reports EIO, not EPIPE; then it is the one-line error of a failed write (after
            // whatever human summary lines reached stderr before the pipe closed)
            let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("tensorcv:")).collect();
            assert!(
                errors.len() == 1
                    && errors[0].contains("standard output")
                    && err.trim_end().ends_with(errors[0]),
                "{err}"
            );
            continue;
        }
        assert_eq!(status.code(), Some(0), "quietly, as ripgrep: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{err}"
        );
    }
}

#[test]
fn a_full_disk_on_standard_output_is_one_line_and_exit_1() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    for args in [
        &["detect", "tests/data/capture/pan.avi", "--json"][..],
        &["inspect", "face"][..],
        &["models"][..],
        &["detect", "tests/data/capture/pan.avi", "--output", "-"][..],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let t = Instant::now();
        let o = bin()
            .args(args)
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let e = stderr(&o);
        assert!(t.elapsed() < Duration::from_secs(10));
        assert_eq!(o.status.code(), Some(1), "{args:?}: {e}");
        assert!(e.contains("No space left on device"), "{e}");
        assert!(!e.contains("panicked"), "{e}");
    }
}

#[test]
fn flag_values_out_of_range_are_usage_errors_naming_the_flag() {
    let img = "tests/data/imgproc/astronaut.png";
    let video = "tests/data/capture/pan.avi";
    let cases: &[(&[&str], &str)] = &[
        (&["detect", img, "--threads", "0"], "--threads"),
        (&["detect", img, "--threads", "4294967296"], "--threads"),
        (
            &["detect", img, "--threads", "18446744073709551615"],
            "--threads",
        ),
        (
            &["detect", img, "--score-threshold", "nan"],
            "--score-threshold",
        ),
        (
            &["detect", img, "--score-threshold", "1.5"],
            "--score-threshold",
        ),
        (
            &["detect", img, "--iou-threshold", "inf"],
            "--iou-threshold",
        ),
        (&["detect", img, "--iou-threshold=-0.1"], "--iou-threshold"),
        (
            &["detect", img, "--max-detections", "0"],
            "--max-detections",
        ),
        (
            &["detect", img, "--max-detections", "18446744073709551615"],
            "--max-detections",
        ),
        (&["segment", img, "--threshold", "NaN"], "--threshold"),
        (
            &["classify", "-m", "emotion", img, "--top-k", "0"],
            "--top-k",
        ),
        (&["detect", video, "--fps", "1e-300"], "--fps"),
        (&["detect", video, "--fps", "inf"], "--fps"),
        (&["detect", video, "--every", "0"], "--every"),
        (&["detect", video, "--max-frames", "0"], "--max-frames"),
        (
            &["detect", "http://127.0.0.1:9/", "--timeout", "1e300"],
            "--timeout",
        ),
        (
            &["detect", "http://127.0.0.1:9/", "--timeout", "nan"],
            "--timeout",
        ),
        (
            &["detect", "http://127.0.0.1:9/", "--frame-timeout=-1"],
            "--frame-timeout",
        ),
        (
            &["detect", "http://127.0.0.1:9/", "--max-frame-mib", "0"],
            "--max-frame-mib",
        ),
        (&["detect", img, "--size", "100000x100000"], "--size"),
        (&["detect", img, "--size", "0x4"], "--size"),
        (&["detect", img, "--mean", "nan,0,0"], "--mean"),
        (&["detect", img, "--std", "1,0,1"], "--std"),
        (&["detect", img, "--decoders", "0"], "--decoders"),
        (
            &["detect", img, "--max-megapixels", "0"],
            "--max-megapixels",
        ),
        (&["detect", "--raw", "100000x100000:rgb24", "-"], "--raw"),
        (
            &["segment", img, "--background", "blur:99999999"],
            "--background",
        ),
        (
            &[
                "classify",
                "-m",
                "emotion",
                "--roi-from",
                "face",
                img,
                "--roi-scale",
                "1e30",
            ],
            "--roi-scale",
        ),
        (
            &["bench", "-m", "face", "--iterations", "0"],
            "--iterations",
        ),
        (
            &[
                "bench",
                "-m",
                "face",
                "--iterations",
                "18446744073709551615",
            ],
            "--iterations",
        ),
    ];
    for (args, flag) in cases {
        let o = tensorcv(args);
        let e = stderr(&o);
        no_panic(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(flag), "{args:?}: {e}");
        assert!(!e.contains("model card"), "not blamed on a card: {e}");
    }
}

#[test]
fn more_threads_than_cores_are_the_cores_with_a_warning() {
    // a WASM build has the one thread it runs on
    let cores = if common::wasm() {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    let asked = (cores * 4).to_string();
    let (o, took) = {
        let mut c = bin();
        c.args([
            "detect",
            "tests/data/imgproc/astronaut.png",
            "--threads",
            &asked,
        ]);
        run_within(c, Duration::from_secs(60))
    };
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("--threads {asked} is more than the {cores} core")),
        "{}",
        stderr(&o)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 detection"));
    println!("--threads {asked} on {cores} cores: {took:?}");
}

#[test]
fn corrupt_models_and_cards_are_errors_naming_the_file() {
    let dir = scratch("corrupt-models");
    let tflite = std::fs::read(root().join("models/shapes_int8.tflite")).unwrap();
    // a changed byte that made tract-tflite panic (crates/infer/tests/corrupt.rs)
    let mut bad = tflite.clone();
    bad[30133] = 0x66;
    let path = dir.join("bad.tflite");
    std::fs::write(&path, &bad).unwrap();
    let p = path.to_str().unwrap();
    for args in [
        &["inspect", p][..],
        &["run", "-m", p, "tests/data/imgproc/astronaut.png"][..],
    ] {
        let o = tensorcv(args);
        no_panic(&o);
        assert_eq!(o.status.code(), Some(1));
        let e = stderr(&o);
        assert!(
            e.contains("bad.tflite") && e.contains("not a valid TFLite file"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "one line: {e}");
    }
    // truncated ONNX
    let onnx = std::fs::read(root().join("models/shapes.onnx")).unwrap();
    let path = dir.join("cut.onnx");
    std::fs::write(&path, &onnx[..onnx.len() / 3]).unwrap();
    let o = tensorcv(&["inspect", path.to_str().unwrap()]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cut.onnx"), "{}", stderr(&o));
    // a card beside a good model, naming an output the model lacks: once, at load
    let model = face_with_card(
        &dir,
        "face",
        "boxes = \"regressors\"",
        "boxes = \"regresors\"",
    );
    let o = tensorcv(&[
        "detect",
        "-m",
        model.to_str().unwrap(),
        "tests/data/capture/pan.avi",
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert_eq!(
        e.matches("regresors").count(),
        1,
        "once, not per frame: {e}"
    );
    assert!(
        e.contains("regressors, classificators") || e.contains("classificators"),
        "{e}"
    );
    assert!(o.stdout.is_empty(), "nothing processed");
}

/// The zoo's face detector copied into `dir` as `name.onnx`, its card beside it with `from`
/// replaced by `to`.
fn face_with_card(dir: &Path, name: &str, from: &str, to: &str) -> std::path::PathBuf {
    let model = dir.join(format!("{name}.onnx"));
    std::fs::copy(
        root().join("models/face_detection_short_range.onnx"),
        &model,
    )
    .unwrap();
    let card =
        std::fs::read_to_string(root().join("models/face_detection_short_range.toml")).unwrap();
    assert!(card.contains(from), "{from}");
    std::fs::write(model.with_extension("toml"), card.replace(from, to)).unwrap();
    model
}

#[test]
fn a_model_that_folds_into_huge_tensors_fails_fast_within_the_memory_budget() {
    // 181 bytes of ONNX: ConstantOfShape([50000, 50000]), 10 GB, folded while tract loads it
    let bomb = "tests/data/fuzz/onnx/constant-of-shape-10gb";
    for args in [
        &["inspect", bomb][..],
        &["run", "-m", bomb, "tests/data/imgproc/astronaut.png"][..],
    ] {
        let mut c = bin();
        c.args(args);
        let (o, took) = run_within(c, Duration::from_secs(30));
        let e = stderr(&o);
        no_panic(&o);
        assert_eq!(o.status.code(), Some(1), "{e}");
        // wasm32's 32-bit sizes: tract refuses the shape itself before allocating
        let refused =
            e.contains("needs more memory") || (common::wasm() && e.contains("too large"));
        assert!(e.contains(bomb) && refused, "{e}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
    // the budget is the user's to set; a normal run fits a small one
    let mut c = bin();
    c.env("TENSORCV_MEMORY_MB", "256")
        .args(["detect", "tests/data/imgproc/astronaut.png"]);
    let (o, _) = run_within(c, Duration::from_secs(30));
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_broken_detector_card_is_blamed_on_the_detector() {
    let dir = scratch("broken-detector");
    let model = face_with_card(&dir, "det", "min_score = 0.5", "min_score = nan");
    let o = tensorcv(&[
        "classify",
        "-m",
        "emotion",
        "--roi-from",
        model.to_str().unwrap(),
        "tests/data/imgproc/astronaut.png",
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("--roi-from") && e.contains("det.onnx") && e.contains("min_score"),
        "{e}"
    );
    assert!(!e.contains("'emotion'"), "not the main model: {e}");
}

#[test]
fn errors_name_the_output_and_the_file() {
    // an output folder that does not exist: named, before any frame
    let o = tensorcv(&[
        "detect",
        "tests/data/capture/pan.avi",
        "--output",
        "nodir/x.avi",
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        e.contains("'nodir/x.avi'") && e.contains("'nodir' does not exist"),
        "{e}"
    );
    assert!(!e.contains("pan.avi"), "{e}");
    assert!(o.stdout.is_empty());
    // an image over the decode limit names its file, and the other inputs go on
    let big = "tests/data/fuzz/image_decode/png-claims-20000x20000";
    let o = tensorcv(&["detect", big, "tests/data/imgproc/astronaut.png"]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        e.contains(big) && e.contains("over the decode limit"),
        "{e}"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 detection"));
    // and the limit is the user's to lower
    let o = tensorcv(&[
        "detect",
        "tests/data/imgproc/astronaut.png",
        "--max-megapixels",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let labels = tensorcv(&[
        "classify",
        "-m",
        "emotion",
        "tests/data/imgproc/astronaut.png",
        "--labels",
        "/dev/zero",
    ]);
    assert_eq!(labels.status.code(), Some(1));
    assert!(stderr(&labels).contains("/dev/zero"), "{}", stderr(&labels));
}

/// One JPEG of the test video.
fn a_jpeg() -> Vec<u8> {
    let img = tensorcv_imgproc::io::imread(
        root().join("tests/data/capture/pan_cv2_frame0.png"),
        &Default::default(),
    )
    .unwrap();
    tensorcv_imgproc::io::imencode(&img.view(), tensorcv_imgproc::io::EncodeFormat::Jpeg(90))
        .unwrap()
}

/// A server that answers one client with `talk`.
fn server(talk: impl FnOnce(&mut std::net::TcpStream) + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/video", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut req = [0u8; 4096];
        let _ = s.read(&mut req);
        talk(&mut s);
    });
    url
}

const MULTIPART: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n";

#[test]
fn chunked_transfer_encoding_is_decoded() {
    let jpg = a_jpeg();
    let url = server(move |s| {
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
        );
        for _ in 0..5 {
            let mut part = format!(
                "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                jpg.len()
            )
            .into_bytes();
            part.extend_from_slice(&jpg);
            part.extend_from_slice(b"\r\n");
            // odd chunk sizes that cut headers and the JPEG anywhere
            for piece in part.chunks(997) {
                let _ = s.write_all(format!("{:x}\r\n", piece.len()).as_bytes());
                let _ = s.write_all(piece);
                let _ = s.write_all(b"\r\n");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = s.write_all(b"0\r\n\r\n");
    });
    let o = tensorcv(&["detect", "--json", "--summary", &url]);
    if common::wasm() {
        return no_network(&o, &url);
    }
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let summary: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(summary["summary"]["frames_in"], 5, "{text}");
    assert!(text.contains("\"label\":\"face\""), "{text}");
}

#[test]
fn streams_that_misbehave_end_with_a_clear_error_in_bounded_time_and_memory() {
    let jpg = a_jpeg();
    type Talk = Box<dyn FnOnce(&mut std::net::TcpStream) + Send>;
    let j = jpg.clone();
    let cases: Vec<(&str, Talk, &[&str], &str)> = vec![
        (
            "a part that never ends",
            Box::new(|s| {
                let _ = s.write_all(MULTIPART);
                let _ = s.write_all(b"--frame\r\nContent-Type: image/jpeg\r\n\r\n");
                let chunk = vec![0u8; 65536];
                for _ in 0..2048 {
                    if s.write_all(&chunk).is_err() {
                        return;
                    }
                }
            }),
            &["--max-frame-mib", "4"],
            "longer than 4194304 bytes",
        ),
        (
            "the wrong boundary",
            Box::new(move |s| {
                let _ = s.write_all(MULTIPART);
                for _ in 0..5 {
                    let _ = s.write_all(b"--other\r\nContent-Type: image/jpeg\r\n\r\n");
                    let _ = s.write_all(&j);
                    let _ = s.write_all(b"\r\n");
                }
            }),
            &[],
            "boundary '--frame' never appeared",
        ),
        (
            "a huge Content-Length",
            Box::new(|s| {
                let _ = s.write_all(MULTIPART);
                let _ = s.write_all(
                    b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 99999999999999\r\n\r\n",
                );
                std::thread::sleep(Duration::from_secs(2));
            }),
            &[],
            "a 99999999999999 byte part",
        ),
        (
            "a byte a second",
            Box::new(|s| {
                let _ = s.write_all(MULTIPART);
                let _ = s.write_all(b"--frame\r\nContent-Type: image/jpeg\r\n\r\n");
                for _ in 0..30 {
                    if s.write_all(b"x").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
            }),
            &["--timeout", "1", "--frame-timeout", "2"],
            "a frame took longer than 2.0 s",
        ),
        (
            "silence",
            Box::new(|_| std::thread::sleep(Duration::from_secs(5))),
            &["--timeout", "0.5"],
            "within 0.5 s",
        ),
        (
            "endless headers",
            Box::new(|s| {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\n");
                for i in 0..100_000 {
                    if s.write_all(format!("X-{i}: y\r\n").as_bytes()).is_err() {
                        return;
                    }
                }
            }),
            &[],
            "not HTTP/1.1",
        ),
        (
            "not HTTP at all",
            Box::new(|s| {
                let _ = s.write_all(&[0u8, 0xff].repeat(5000));
            }),
            &[],
            "not HTTP/1.1",
        ),
        (
            "a 404",
            Box::new(|s| {
                let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            }),
            &[],
            "404",
        ),
    ];
    for (what, talk, extra, want) in cases {
        let url = server(talk);
        let mut c = bin();
        c.args(["detect", &url]).args(extra);
        let (o, took) = run_within(c, Duration::from_secs(30));
        let e = stderr(&o);
        println!(
            "{what}: exit {:?} in {took:?}: {}",
            o.status.code(),
            e.trim()
        );
        no_panic(&o);
        if common::wasm() {
            no_network(&o, &url);
            continue;
        }
        assert_eq!(o.status.code(), Some(1), "{what}: {e}");
        assert!(e.contains(want), "{what}: {e}");
        assert!(e.contains(&url), "{what}: names the stream: {e}");
    }
}

#[test]
fn corrupt_videos_end_with_an_error_or_the_frames_they_hold() {
    let dir = scratch("corrupt-videos");
    let avi = std::fs::read(root().join("tests/data/capture/pan.avi")).unwrap();
    let y4m = std::fs::read(root().join("tests/data/capture/pan.y4m")).unwrap();
    let gif = std::fs::read(root().join("tests/data/capture/pan.gif")).unwrap();
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    // found by fuzzing: a GIF frame claiming 21573x17235 pixels on a 2x2 canvas
    cases.push((
        "frame-larger-than-canvas.gif".into(),
        std::fs::read(root().join("tests/data/fuzz/gif/crash-gif-frame-larger-than-canvas"))
            .unwrap(),
    ));
    for (name, data) in [("a.avi", &avi), ("a.y4m", &y4m), ("a.gif", &gif)] {
        // cut short, and sizes and offsets overwritten near the start and in the middle
        cases.push((format!("cut-{name}"), data[..data.len() / 2].to_vec()));
        for at in [4, 16, 40, 64, 100, 200, data.len() / 2] {
            let mut bad = data.clone();
            bad[at..at + 4].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
            cases.push((format!("at{at}-{name}"), bad));
        }
    }
    for (name, data) in cases {
        let path = dir.join(&name);
        std::fs::write(&path, data).unwrap();
        let mut c = bin();
        c.args(["detect", path.to_str().unwrap(), "--summary"]);
        let (o, took) = run_within(c, Duration::from_secs(30));
        no_panic(&o);
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{name}: {:?} {}",
            o.status,
            stderr(&o)
        );
        assert!(took < Duration::from_secs(20), "{name}: {took:?}");
    }
}

#[test]
fn file_names_that_are_not_utf8_are_read_like_any_other() {
    use std::os::unix::ffi::OsStrExt;
    if common::wasm() {
        return; // WASI's arguments and paths are UTF-8 strings: such a name cannot reach it
    }
    let dir = scratch("not-utf8");
    let name = |stem: &[u8], ext: &str| {
        let mut b = stem.to_vec();
        b.extend_from_slice(ext.as_bytes());
        dir.join(std::ffi::OsStr::from_bytes(&b))
    };
    let jpeg = name(b"caf\xe9", ".jpg");
    let y4m = name(b"\xff\xfe", ".y4m");
    std::fs::copy(root().join("tests/data/imgproc/chelsea_q90_420.jpg"), &jpeg).unwrap();
    std::fs::copy(root().join("tests/data/capture/pan.y4m"), &y4m).unwrap();
    for input in [jpeg.as_os_str(), y4m.as_os_str(), dir.as_os_str()] {
        let mut c = bin();
        c.args(["detect", "--summary"]).arg(input);
        let (o, _) = run_within(c, Duration::from_secs(60));
        no_panic(&o);
        assert_eq!(o.status.code(), Some(0), "{input:?}: {}", stderr(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains('\u{fffd}'),
            "the name is shown, its odd bytes replaced: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
}
