//! What each fuzz target does with its bytes, as plain functions: `fuzz/fuzz_targets/*.rs`
//! (cargo-fuzz, libFuzzer) call them, and `tests/regressions.rs` replays every input the
//! fuzzers ever crashed on (`tests/data/fuzz/<target>/`) in the normal test suite, so a fixed
//! crash stays fixed without nightly or libFuzzer.
//!
//! Every parser of untrusted bytes has one: image decoding with limits (and the MJPEG Huffman
//! table fix-up), Y4M, AVI, GIF, the multipart reader of MJPEG streams, the raw frame reader,
//! ONNX and TFLite model loading, model cards (with the settings checks and anchors they
//! make), and the preview server's HTTP handling.
//!
//! The rule each one checks: the bytes give a value or an error — no panic of tensorcv's
//! own, no abort, no hang, memory within the fuzzer's limit. Panics inside third-party code
//! that tensorcv contains on purpose (tract's and the image decoders' loaders, caught where
//! they are called and turned into errors) are allowed by [`install_hook`]; any other panic
//! aborts, which the fuzzer reports.

#![deny(unsafe_code)]

use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};
use std::time::Duration;
use tensorcv_capture::Source;

/// The decode limits the targets run under: small enough for the fuzzer's memory limit.
fn limits() -> tensorcv_imgproc::io::DecodeLimits {
    tensorcv_imgproc::io::DecodeLimits {
        max_width: 4096,
        max_height: 4096,
        max_pixels: 4 << 20,
        max_input_bytes: 16 << 20,
        max_alloc: 256 << 20,
    }
}

/// Where a panic may happen and be contained by tensorcv: code from crates.io (tract,
/// flatbuffers, the image codecs), caught at the loading and decoding boundaries.
fn contained_by_design(file: &str) -> bool {
    file.contains("/.cargo/registry/") || file.contains("index.crates.io")
}

/// The fuzzers' memory budget: 1.5 GB live, 1 GB at once (libFuzzer's own limit is 2 GB), as
/// the `tensorcv` command keeps its own (`tensorcv_infer::memory`).
#[cfg(feature = "models")]
#[global_allocator]
static MEMORY: tensorcv_infer::memory::Budget = tensorcv_infer::memory::Budget::new();

static HOOKED: Once = Once::new();
/// Set when a panic of tensorcv's own code was seen (the hook aborts under libFuzzer; tests
/// read this).
pub static OWN_PANIC: AtomicBool = AtomicBool::new(false);

/// Set the memory budget and replace the panic hook (libFuzzer's aborts on every panic,
/// contained or not): a panic in third-party code is let unwind to tensorcv's `catch_unwind`,
/// silently; a panic in tensorcv's own code is printed and, when `abort` (the fuzzers),
/// aborts the process.
pub fn install_hook(abort: bool) {
    HOOKED.call_once(|| {
        #[cfg(feature = "models")]
        MEMORY.set_limits(1536 << 20, 1 << 30);
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let file = info.location().map(|l| l.file()).unwrap_or("");
            if contained_by_design(file) {
                return;
            }
            OWN_PANIC.store(true, Ordering::Relaxed);
            default(info);
            if abort {
                std::process::abort();
            }
        }));
    });
}

/// Read at most `max` frames of a source, as the runner would.
fn drain(mut source: Box<dyn Source>, max: usize) {
    for _ in 0..max {
        match source.next_frame() {
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(e) if e.is_frame_error() => {}
            Err(_) => return,
        }
    }
}

/// `imdecode` with limits, full size and reduced (the JPEG fast path), and after the MJPEG
/// Huffman-table fix-up.
pub fn image_decode(data: &[u8]) {
    use tensorcv_imgproc::io::{imdecode, DecodeOptions, ImreadMode};
    let mut o = DecodeOptions {
        limits: limits(),
        ..DecodeOptions::default()
    };
    let _ = imdecode(data, &o);
    o.reduce_to = Some((32, 32));
    o.mode = ImreadMode::Grayscale;
    let _ = imdecode(data, &o);
    let fixed = tensorcv_capture::jpeg::with_huffman_tables(data);
    o.reduce_to = None;
    o.allow_truncated = true;
    let _ = imdecode(&fixed, &o);
}

/// A Y4M stream: header and frames.
pub fn y4m(data: &[u8]) {
    if let Ok(r) = tensorcv_capture::y4m::Y4mReader::new(
        "fuzz.y4m".into(),
        Box::new(Cursor::new(data.to_vec())),
    ) {
        drain(Box::new(r), 64);
    }
}

/// An AVI file: headers, the movi list, MJPEG or BGR frames.
pub fn avi(data: &[u8]) {
    if let Ok(r) = tensorcv_capture::avi::AviReader::from_reader(
        "fuzz.avi".into(),
        Box::new(Cursor::new(data.to_vec())),
    ) {
        drain(Box::new(r.with_limits(limits())), 64);
    }
}

/// A GIF: canvas, frames, disposal.
pub fn gif(data: &[u8]) {
    if let Ok(r) = tensorcv_capture::gif::GifReader::from_reader(
        "fuzz.gif".into(),
        Cursor::new(data.to_vec()),
        limits(),
    ) {
        drain(Box::new(r), 64);
    }
}

/// The multipart reader of MJPEG streams: the first byte picks the piece size the stream is
/// fed in, the second the part limit; the rest is the stream (boundary `frame`).
pub fn multipart(data: &[u8]) {
    use tensorcv_capture::multipart::{Multipart, Step};
    let (Some(&piece), Some(&max)) = (data.first(), data.get(1)) else {
        return;
    };
    let stream = &data[2.min(data.len())..];
    let mut m = Multipart::new("frame", 64 + max as usize * 64);
    let mut pieces = stream.chunks(piece as usize % 61 + 1);
    let mut eof = false;
    // at most one step per byte and part, with a margin: anything more is a loop
    for _ in 0..(stream.len() * 4 + 64) {
        match m.step(eof) {
            Ok(Step::Part(p)) => {
                assert!(p.len() <= 64 + max as usize * 64, "a part over the limit")
            }
            Ok(Step::End) | Err(_) => return,
            Ok(Step::NeedMore) => match pieces.next() {
                Some(p) => m.feed(p),
                None if eof => panic!("more bytes asked for at the end of the stream"),
                None => eof = true,
            },
        }
    }
    panic!("the multipart reader does not finish");
}

/// The raw frame reader: the first bytes pick the size and format.
pub fn raw(data: &[u8]) {
    use tensorcv_capture::raw::{RawFormat, RawReader};
    let (Some(&w), Some(&h), Some(&f)) = (data.first(), data.get(1), data.get(2)) else {
        return;
    };
    let format = ["rgb24", "bgr24", "gray", "yuyv", "nv12"][f as usize % 5];
    let Ok(format) = format!("{}x{}:{format}", w % 64 + 1, h % 64 + 1).parse::<RawFormat>() else {
        return;
    };
    let r = RawReader::new(
        "fuzz".into(),
        Box::new(Cursor::new(data[3..].to_vec())),
        format,
    );
    drain(Box::new(r), 64);
}

/// Load bytes as a model and, when they load, run it once on a gray image.
#[cfg(feature = "models")]
fn load_and_run(data: &[u8]) {
    use tensorcv_infer::{LoadOptions, Model};
    let Ok(model) = Model::from_bytes(data, LoadOptions::default()) else {
        return;
    };
    let spec = model.input_spec();
    if spec.width * spec.height > 1 << 20 {
        return; // a valid model asking for a huge input: nothing to learn from running it
    }
    if let Ok(mut session) = model.session() {
        let img = tensorcv_imgproc::Image::new(64, 48, tensorcv_imgproc::PixelFormat::Bgr8)
            .expect("a small image");
        let _ = session.run(&img.view());
    }
}

/// ONNX model loading (bytes without TFLite's identifier).
#[cfg(feature = "models")]
pub fn onnx(data: &[u8]) {
    if tensorcv_infer::Format::detect(data) == tensorcv_infer::Format::Onnx {
        load_and_run(data);
    }
}

/// TFLite model loading: the identifier is put in place so every input is read as a
/// flatbuffer.
#[cfg(feature = "models")]
pub fn tflite(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let mut bytes = data.to_vec();
    bytes[4..8].copy_from_slice(b"TFL3");
    load_and_run(&bytes);
}

/// A model card: parsing, the checks, and the task settings with their anchors (the SSD
/// decoder's anchor generation runs on the card's numbers) for a 128×128 input.
#[cfg(feature = "models")]
pub fn card(data: &[u8]) {
    use tensorcv_tasks::detection::{DetectSettings, Detector};
    use tensorcv_tasks::{ClassifySettings, SegmentSettings};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(card) = tensorcv_infer::ModelCard::parse(text, "fuzz.toml") else {
        return;
    };
    let _ = ClassifySettings::from_card(&card);
    let _ = SegmentSettings::from_card(&card);
    if let Ok(settings) = DetectSettings::from_card(&card) {
        let _ = Detector::new(settings, card.labels.clone(), 128, 128);
    }
}

/// The preview server, started once for all inputs, with a short head timeout.
fn preview() -> std::net::SocketAddr {
    static SERVER: OnceLock<std::net::SocketAddr> = OnceLock::new();
    *SERVER.get_or_init(|| {
        use tensorcv_capture::serve::{Limits, PreviewServer};
        let limits = Limits {
            head_timeout: Duration::from_millis(300),
            write_timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        let server = PreviewServer::bind_with("127.0.0.1:0", limits).expect("a loopback port");
        let img = tensorcv_imgproc::Image::new(32, 24, tensorcv_imgproc::PixelFormat::Bgr8)
            .expect("a small image");
        server
            .publish(&img.view(), 0, "{\"detections\":[]}", 1.0)
            .expect("published");
        let addr = server.local_addr();
        // the server lives as long as the process
        std::mem::forget(server);
        addr
    })
}

/// The preview server's HTTP handling: the bytes are one client's request (the connection is
/// half-closed after them); the answer is read until the server closes, and the server must
/// still answer a plain request after it.
pub fn preview_http(data: &[u8]) {
    use std::io::{Read, Write};
    let addr = preview();
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        panic!("the preview server stopped accepting");
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(data);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let _ = s.take(1 << 20).read_to_end(&mut answer);
    if data.starts_with(b"GET /stream") {
        return; // a stream never ends by itself
    }
    let mut probe = std::net::TcpStream::connect(addr).expect("the server accepts");
    let _ = probe.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = probe.write_all(b"GET /results HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut first = [0u8; 12];
    let ok = probe.read_exact(&mut first).is_ok() && &first == b"HTTP/1.1 200";
    assert!(ok, "the preview server stopped answering");
}

/// What a target does with its bytes.
pub type Target = fn(&[u8]);

/// Every target by name (for the regression test and the campaign script).
pub const TARGETS: &[(&str, Target)] = &[
    ("image_decode", image_decode),
    ("y4m", y4m),
    ("avi", avi),
    ("gif", gif),
    ("multipart", multipart),
    ("raw", raw),
    #[cfg(feature = "models")]
    ("onnx", onnx),
    #[cfg(feature = "models")]
    ("tflite", tflite),
    #[cfg(feature = "models")]
    ("card", card),
    ("preview_http", preview_http),
];
