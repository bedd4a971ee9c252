//! `tensorcv` on videos and streams: the pan-and-zoom test videos (tools/make_capture_refs.py),
//! raw frames on a pipe, MJPEG over HTTP from a local server, and the live preview server.

mod common;
use common::{json_lines, root, scratch, tensorcv};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use tensorcv_capture::Source;

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn iou(a: &[f64], b: &[f64]) -> f64 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = |r: &[f64]| (r[2] - r[0]) * (r[3] - r[1]);
    iw * ih / (area(a) + area(b) - iw * ih)
}

/// The face in frame `i`, where the still photo's face lands through the frame's crop window.
fn expected_face(meta: &serde_json::Value, i: usize, face: &[f64]) -> Vec<f64> {
    let w = floats(&meta["windows"][i]);
    let (sx, sy) = (160.0 / w[2], 120.0 / w[3]);
    vec![
        (face[0] - w[0]) * sx,
        (face[1] - w[1]) * sy,
        (face[2] - w[0]) * sx,
        (face[3] - w[1]) * sy,
    ]
}

/// A WASM build refuses GIF (its decoder needs a thread) with one clear line.
fn no_gif(o: &std::process::Output) {
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("pan.gif") && e.contains("needs a thread"), "{e}");
}

#[test]
fn the_face_is_tracked_in_every_frame_of_every_video_format() {
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/data/capture/pan.json")).unwrap(),
    )
    .unwrap();
    // the face in the still photo
    let o = tensorcv(&["detect", "--json", "tests/data/imgproc/astronaut.png"]);
    let face = floats(&json_lines(&o)[0]["detections"][0]["box"]);
    for (video, frames) in [("pan.avi", 16), ("pan.y4m", 16), ("pan.gif", 8)] {
        let path = format!("tests/data/capture/{video}");
        let o = tensorcv(&["detect", "--json", &path]);
        if common::wasm() && video.ends_with(".gif") {
            no_gif(&o);
            continue;
        }
        assert!(
            o.status.success(),
            "{video}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let records = json_lines(&o);
        assert_eq!(records.len(), frames, "{video}");
        let mut worst = 1f64;
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r["frame"], i as u64);
            assert_eq!(
                (r["width"].as_u64(), r["height"].as_u64()),
                (Some(160), Some(120))
            );
            assert!(r["timestamp_ms"].as_f64().is_some(), "{r}");
            let dets = r["detections"].as_array().unwrap();
            assert_eq!(dets.len(), 1, "{video} frame {i}: {dets:?}");
            let overlap = iou(&floats(&dets[0]["box"]), &expected_face(&meta, i, &face));
            worst = worst.min(overlap);
        }
        println!(
            "{video}: the face in all {frames} frames, IoU with the expected track >= {worst:.3}"
        );
        assert!(worst > 0.6, "{video}: {worst}");
    }
    // the AVI's frames decode as OpenCV's VideoCapture decodes them (both are JPEG decoders)
    let mut avi =
        tensorcv_capture::avi::AviReader::open(&root().join("tests/data/capture/pan.avi")).unwrap();
    assert_eq!(avi.info().frames, Some(16));
    assert_eq!(avi.info().fps, Some(10.0));
    let ours = avi.next_frame().unwrap().unwrap().image;
    let cv2 = tensorcv_imgproc::io::imread(
        root().join("tests/data/capture/pan_cv2_frame0.png"),
        &Default::default(),
    )
    .unwrap();
    let diffs: Vec<u8> = ours
        .as_bytes()
        .iter()
        .zip(cv2.as_bytes())
        .map(|(a, b)| a.abs_diff(*b))
        .collect();
    let max = *diffs.iter().max().unwrap();
    let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
    println!("pan.avi frame 0 vs cv2.VideoCapture: max diff {max}, mean {mean:.3}");
    // zune-jpeg and libjpeg-turbo upsample chroma differently at sharp edges
    assert!(mean < 1.0 && max <= 32, "max {max}, mean {mean}");
}

fn count_frames(path: &Path) -> (u64, usize, usize) {
    let mut src = tensorcv_capture::open(path.to_str().unwrap(), &Default::default()).unwrap();
    let mut n = 0;
    let (mut w, mut h) = (0, 0);
    while let Some(f) = src.next_frame().unwrap() {
        n += 1;
        (w, h) = (f.image.width(), f.image.height());
    }
    (n, w, h)
}

#[test]
fn annotated_videos_are_written_and_decode_again() {
    let out = scratch("out");
    for name in ["annotated.avi", "annotated.y4m", "seq/%04d.png"] {
        let target = out.join(name);
        let o = tensorcv(&[
            "detect",
            "tests/data/capture/pan.y4m",
            "--every",
            "2",
            "--output",
            target.to_str().unwrap(),
        ]);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let (n, w, h) = count_frames(&target);
        assert_eq!((n, w, h), (8, 160, 120), "{name}");
    }
    // the AVI says its frame count and rate (every 2nd frame of 10 fps: 5 fps)
    let avi = tensorcv_capture::avi::AviReader::open(&out.join("annotated.avi")).unwrap();
    assert_eq!(avi.info().frames, Some(8));
    assert_eq!(avi.info().fps, Some(5.0));
    // Y4M on standard output, as ffplay - reads it
    let gif = if common::wasm() {
        "tests/data/capture/pan.y4m" // no GIF there; the same frames, twice as many
    } else {
        "tests/data/capture/pan.gif"
    };
    let mut args = vec!["detect", gif, "--output", "-"];
    if common::wasm() {
        args.extend(["--max-frames", "8"]);
        no_gif(&tensorcv(&["detect", "tests/data/capture/pan.gif"]));
    }
    let o = tensorcv(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout.starts_with(b"YUV4MPEG2 W160 H120"));
    let header = b"YUV4MPEG2 W160 H120 F10000:1000 Ip A1:1 C420jpeg\n".len();
    assert_eq!(
        o.stdout.len(),
        header + 8 * (6 + 160 * 120 * 3 / 2),
        "header + 8 frames, nothing else"
    );
}

#[test]
fn raw_frames_on_a_pipe_give_the_same_results_as_the_file() {
    // the Y4M's frames as rgb24, the way `ffmpeg -f rawvideo -pix_fmt rgb24 -` sends them
    let mut y4m =
        tensorcv_capture::y4m::Y4mReader::open(&root().join("tests/data/capture/pan.y4m")).unwrap();
    let mut raw = Vec::new();
    while let Some(f) = y4m.next_frame().unwrap() {
        let rgb = tensorcv_imgproc::color::convert_to(
            &f.image.view(),
            tensorcv_imgproc::PixelFormat::Rgb8,
        )
        .unwrap();
        raw.extend_from_slice(rgb.as_bytes());
    }
    let mut child = common::command()
        .args(["detect", "--json", "--raw", "160x120:rgb24", "-"])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&raw));
    let piped = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        piped.status.success(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    let from_file = json_lines(&tensorcv(&[
        "detect",
        "--json",
        "tests/data/capture/pan.y4m",
    ]));
    let from_pipe = json_lines(&piped);
    assert_eq!(from_pipe.len(), 16);
    for (a, b) in from_pipe.iter().zip(&from_file) {
        assert_eq!(a["detections"], b["detections"], "frame {}", a["frame"]);
    }
    // stdin without --raw, and a pipe that ends inside a frame
    let o = tensorcv(&["detect", "-"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs --raw"));
}

/// Serve the JPEG frames of pan.avi as an MJPEG stream, once, to one client.
fn mjpeg_server(frames: Vec<Vec<u8>>, with_length: bool) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/video", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut req = [0u8; 1024];
        let _ = s.read(&mut req);
        s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=\"cam\"\r\n\r\n",
        )
        .unwrap();
        for f in frames {
            let head = if with_length {
                format!(
                    "--cam\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                    f.len()
                )
            } else {
                "--cam\r\nContent-Type: image/jpeg\r\n\r\n".to_string()
            };
            if s.write_all(head.as_bytes())
                .and_then(|_| s.write_all(&f))
                .and_then(|_| s.write_all(b"\r\n"))
                .is_err()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        let _ = s.write_all(b"--cam--\r\n");
    });
    (url, handle)
}

/// The JPEG chunks of pan.avi (OpenCV's encoder writes its own Huffman tables, so they stay;
/// frames without tables are covered by `tensorcv_capture::jpeg`'s tests).
fn avi_jpegs() -> Vec<Vec<u8>> {
    let data = std::fs::read(root().join("tests/data/capture/pan.avi")).unwrap();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 8 < data.len() {
        if &data[i..i + 4] == b"idx1" {
            break; // the index names the chunks again
        }
        if &data[i..i + 4] == b"00dc" {
            let n =
                u32::from_le_bytes([data[i + 4], data[i + 5], data[i + 6], data[i + 7]]) as usize;
            let chunk = &data[i + 8..(i + 8 + n).min(data.len())];
            if chunk.starts_with(&[0xff, 0xd8]) {
                out.push(chunk.to_vec());
            }
            i += 8 + n;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn mjpeg_over_http_is_read_live() {
    let frames = avi_jpegs();
    assert_eq!(frames.len(), 16);
    for with_length in [true, false] {
        let (url, server) = mjpeg_server(frames.clone(), with_length);
        let o = tensorcv(&["detect", "--json", "--summary", &url]);
        if common::wasm() {
            // no sockets in WASI: one clear error naming the stream (the server is left
            // waiting for a client that never comes)
            return common::no_network(&o, &url);
        }
        server.join().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let lines = json_lines(&o);
        let (records, summary) = lines.split_at(lines.len() - 1);
        let s = &summary[0]["summary"];
        println!("MJPEG over HTTP (Content-Length {with_length}): {s}");
        assert_eq!(
            s["frames_in"],
            16,
            "{s} {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            s["processed"].as_u64().unwrap() + s["dropped"].as_u64().unwrap(),
            16,
            "live: every frame processed or dropped"
        );
        assert!(!records.is_empty());
        for r in records {
            assert_eq!(r["detections"].as_array().unwrap().len(), 1, "{r}");
        }
    }
    // nobody listening: a clear error, quickly
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = tensorcv(&["detect", &format!("http://127.0.0.1:{port}/")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot connect"));
}

fn http_get(addr: &str, path: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn the_preview_server_answers_a_real_client() {
    if common::wasm() {
        // no sockets in WASI: `--serve` is refused before any frame is read
        let o = tensorcv(&[
            "detect",
            "tests/data/capture/pan.avi",
            "--serve",
            "127.0.0.1:0",
        ]);
        return common::no_network(&o, "--serve");
    }
    // 16 frames at 8 fps: two seconds of stream to look at
    let mut child = common::command()
        .args([
            "detect",
            "tests/data/capture/pan.avi",
            "--fps",
            "8",
            "--serve",
            "127.0.0.1:0",
        ])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("tensorcv: preview on http://")
        .and_then(|a| a.strip_suffix('/'))
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    let page = String::from_utf8_lossy(&http_get(&addr, "/")).to_string();
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("<img id=\"stream\" src=\"/stream\"")
    );
    // the stream: read the first JPEG part and decode it
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut length = None;
    let mut header = String::new();
    while r.read_line(&mut header).unwrap() > 0 {
        if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            length = Some(v.trim().parse::<usize>().unwrap());
        }
        if header == "\r\n" && length.is_some() {
            break;
        }
        header.clear();
    }
    let mut jpeg = vec![0u8; length.unwrap()];
    r.read_exact(&mut jpeg).unwrap();
    let frame = tensorcv_imgproc::io::imdecode(&jpeg, &Default::default()).unwrap();
    assert_eq!((frame.width(), frame.height()), (160, 120));
    let results = String::from_utf8_lossy(&http_get(&addr, "/results")).to_string();
    let body = results.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(v["results"]["detections"].is_array(), "{v}");
    assert!(http_get(&addr, "/nope").starts_with(b"HTTP/1.1 404"));
    // a browser, when there is one
    if let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .find(|p| Path::new(p).exists())
    {
        let shot = scratch("shot").join("preview.png");
        let profile = scratch("chromium-profile");
        let o = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                &format!("--user-data-dir={}", profile.display()),
                "--window-size=480,480",
                "--virtual-time-budget=1500",
                &format!("--screenshot={}", shot.display()),
                &format!("http://{addr}/"),
            ])
            .output()
            .unwrap();
        let png = tensorcv_imgproc::io::imread(&shot, &Default::default())
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
        let distinct: std::collections::HashSet<&[u8]> = png.as_bytes().chunks(3).collect();
        println!(
            "chromium screenshot: {}x{}, {} colors",
            png.width(),
            png.height(),
            distinct.len()
        );
        assert!(
            distinct.len() > 100,
            "the page shows a frame, not a blank page"
        );
    } else {
        println!("no chromium installed: the browser check was skipped");
    }
    let status = child.wait().unwrap();
    assert!(status.success());
}

#[test]
fn ctrl_c_closes_the_outputs_and_prints_the_summary() {
    if common::wasm() {
        return; // WASI has no signals: the host ends a WASM run, not ctrl-c
    }
    let out = scratch("interrupt").join("partial.avi");
    // 16 frames at 4 fps: four seconds; interrupt after about one
    let child = common::command()
        .args([
            "detect",
            "tests/data/capture/pan.avi",
            "--fps",
            "4",
            "--output",
        ])
        .arg(&out)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // interrupt once frames are being written (not at a fixed time: a slow start, as under
    // qemu-user, would take the signal before the handler is installed), then a little later
    let started = std::time::Instant::now();
    while std::fs::metadata(&out).map_or(0, |m| m.len()) < 4096 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no frame written"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(600));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("interrupted"),
        "the summary says so: {stderr}"
    );
    // the AVI is complete: its header counts the frames it holds, and they decode
    let (n, w, h) = count_frames(&out);
    let avi = tensorcv_capture::avi::AviReader::open(&out).unwrap();
    println!("interrupted after {n} frames");
    assert!((2..16).contains(&n), "{n} frames");
    assert_eq!(avi.info().frames, Some(n));
    assert_eq!((w, h), (160, 120));
}
