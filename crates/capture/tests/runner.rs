//! The runner under load, with a real model (the zoo's face detector): a live source faster
//! than the model drops frames and keeps latency bounded; files keep every frame in order; a
//! long run keeps its memory; the threaded and sequential runs give the same results.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use tensorcv_capture::runner::{run, Event, RunOptions, Summary, Work};
use tensorcv_capture::{Frame, Source, SourceInfo};
use tensorcv_imgproc::io::{imread, DecodeOptions};
use tensorcv_imgproc::Image;
use tensorcv_infer::{Model, Task};
use tensorcv_tasks::pipeline::Outcome;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Frames made on demand from one picture, as fast as asked, optionally marked live.
struct Synthetic {
    info: SourceInfo,
    picture: Image,
    left: u64,
    index: u64,
    start: Instant,
    every: Option<Duration>,
}

impl Synthetic {
    fn new(picture: Image, frames: u64, live: bool, every: Option<Duration>) -> Self {
        Synthetic {
            info: SourceInfo {
                name: "synthetic".into(),
                width: Some(picture.width()),
                height: Some(picture.height()),
                format: "BGR".into(),
                fps: None,
                frames: Some(frames),
                live,
            },
            picture,
            left: frames,
            index: 0,
            start: Instant::now(),
            every,
        }
    }
}

impl Source for Synthetic {
    fn info(&self) -> &SourceInfo {
        &self.info
    }
    fn next_frame(&mut self) -> tensorcv_capture::Result<Option<Frame>> {
        if self.left == 0 {
            return Ok(None);
        }
        if let Some(d) = self.every {
            std::thread::sleep(d);
        }
        self.left -= 1;
        self.index += 1;
        Ok(Some(Frame {
            image: self.picture.clone(),
            index: self.index - 1,
            timestamp: self.start.elapsed(),
            name: None,
            scale: 1.0,
        }))
    }
}

fn astronaut() -> Image {
    imread(
        root().join("tests/data/imgproc/astronaut.png"),
        &DecodeOptions::default(),
    )
    .unwrap()
}

fn face() -> Model {
    Model::load(root().join("models/face_detection_short_range.onnx")).unwrap()
}

/// Run and collect (frame index, number of faces).
fn collect(source: Synthetic, options: &RunOptions) -> (Summary, Vec<(u64, usize)>) {
    let model = face();
    let work = Work::new(&model, Some(Task::Detection), None).unwrap();
    let stop = AtomicBool::new(false);
    let mut seen = Vec::new();
    let summary = run(Box::new(source), work, options, &stop, &mut |e| {
        if let Event::Frame(p) = e {
            let n = match &p.analysis.outcome {
                Outcome::Detections(d) => d.len(),
                _ => usize::MAX,
            };
            seen.push((p.frame.index, n));
        }
        Ok(())
    })
    .unwrap();
    (summary, seen)
}

#[test]
fn a_live_source_faster_than_the_model_drops_frames_and_keeps_latency_bounded() {
    // a 1 ms camera, a model that takes several ms: most frames must be dropped
    let source = Synthetic::new(astronaut(), 400, true, Some(Duration::from_millis(1)));
    let (s, seen) = collect(source, &RunOptions::default());
    println!(
        "live: {} in, {} processed, {} dropped; inference p50 {:.2} ms; latency p50 {:.2} p95 {:.2} max {:.2} ms",
        s.frames_in, s.processed, s.dropped, s.stages[2].1.p50, s.latency.p50, s.latency.p95, s.latency.max
    );
    assert_eq!(s.frames_in, 400);
    assert!(s.dropped > 0, "{s:?}");
    assert_eq!(
        s.processed + s.dropped,
        s.frames_in,
        "every frame is processed or dropped"
    );
    assert_eq!(seen.len() as u64, s.processed);
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "in order");
    assert!(
        seen.iter().all(|&(_, n)| n == 1),
        "the face in every processed frame"
    );
    // a frame waits for at most the frames ahead of it in the pipeline: a few inferences
    let bound = 10.0 * s.stages[2].1.p95 + 50.0;
    assert!(
        s.latency.p95 < bound,
        "latency p95 {} ms over {bound} ms",
        s.latency.p95
    );
}

#[test]
fn files_keep_every_frame_in_order_and_limits_apply() {
    let source = Synthetic::new(astronaut(), 40, false, None);
    let (s, seen) = collect(source, &RunOptions::default());
    assert_eq!((s.frames_in, s.processed, s.dropped), (40, 40, 0));
    assert_eq!(
        seen.iter().map(|f| f.0).collect::<Vec<_>>(),
        (0..40).collect::<Vec<_>>()
    );
    let every = RunOptions {
        every: 3,
        max_frames: Some(5),
        ..Default::default()
    };
    let (s, seen) = collect(Synthetic::new(astronaut(), 40, false, None), &every);
    assert_eq!(
        seen.iter().map(|f| f.0).collect::<Vec<_>>(),
        [0, 3, 6, 9, 12]
    );
    assert_eq!((s.processed, s.skipped), (5, 8));
    // the sequential run gives the same results
    let seq = RunOptions {
        sequential: true,
        ..Default::default()
    };
    let (s2, seen2) = collect(Synthetic::new(astronaut(), 40, false, None), &seq);
    assert_eq!(s2.processed, 40);
    assert_eq!(seen2.len(), 40);
    // the stop flag ends a run early, cleanly
    let model = face();
    let work = Work::new(&model, Some(Task::Detection), None).unwrap();
    let stop = AtomicBool::new(false);
    let mut n = 0;
    let s = run(
        Box::new(Synthetic::new(astronaut(), 1000, false, None)),
        work,
        &RunOptions::default(),
        &stop,
        &mut |_| {
            n += 1;
            if n == 10 {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        },
    )
    .unwrap();
    assert!(
        s.interrupted && s.processed >= 10 && s.processed < 20,
        "{s:?}"
    );
}

fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_long_run_keeps_its_memory() {
    // 3000 small frames; memory after 500 and after 3000 must be about the same
    let small = tensorcv_imgproc::resize::resize_to(
        &astronaut().view(),
        96,
        96,
        tensorcv_imgproc::Interpolation::Area,
    )
    .unwrap();
    let model = face();
    let work = Work::new(&model, Some(Task::Detection), None).unwrap();
    let stop = AtomicBool::new(false);
    let (mut n, mut at_500) = (0u64, None);
    let s = run(
        Box::new(Synthetic::new(small, 3000, false, None)),
        work,
        &RunOptions::default(),
        &stop,
        &mut |e| {
            n += 1;
            if n == 500 {
                at_500 = rss_kb();
            }
            assert!(matches!(e, Event::Frame(_)));
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(s.processed, 3000);
    if let (Some(a), Some(b)) = (at_500, rss_kb()) {
        println!(
            "RSS after 500 frames {a} kB, after 3000 {b} kB ({:.1} fps)",
            s.fps
        );
        assert!(b < a + 8 * 1024, "memory grew from {a} kB to {b} kB");
    }
}

/// Image files decode on several threads and still arrive in order, a broken file in its place.
#[test]
fn files_decoded_on_several_threads_arrive_in_order() {
    use tensorcv_imgproc::io::{imencode, EncodeFormat};
    let dir = std::env::temp_dir().join(format!("tensorcv-decoders-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let photo = imencode(&astronaut().view(), EncodeFormat::Jpeg(90)).unwrap();
    let blank = imencode(
        &Image::new(320, 240, tensorcv_imgproc::PixelFormat::Bgr8)
            .unwrap()
            .view(),
        EncodeFormat::Jpeg(90),
    )
    .unwrap();
    for i in 0..14u32 {
        let bytes: &[u8] = match i {
            9 => b"not a picture",
            _ if i % 3 == 0 => &blank,
            _ => &photo,
        };
        std::fs::write(dir.join(format!("{i:03}.jpg")), bytes).unwrap();
    }
    let model = face();
    let go = |decoders: usize| {
        let source = tensorcv_capture::open(
            dir.to_str().unwrap(),
            &tensorcv_capture::OpenOptions::default(),
        )
        .unwrap();
        assert!(source.decodes_in_jobs());
        let work = Work::new(&model, Some(Task::Detection), None).unwrap();
        let options = RunOptions {
            decoders,
            ..RunOptions::default()
        };
        let stop = AtomicBool::new(false);
        let mut seen: Vec<String> = Vec::new();
        let summary = run(source, work, &options, &stop, &mut |e| {
            seen.push(match e {
                Event::Frame(p) => match &p.analysis.outcome {
                    Outcome::Detections(d) => format!("{} {}", p.frame.index, d.len()),
                    _ => "?".into(),
                },
                Event::Failed(e) => format!("failed {e}"),
            });
            Ok(())
        })
        .unwrap();
        (summary.processed, summary.failed, seen)
    };
    let one = go(1);
    let three = go(3);
    assert_eq!((one.0, one.1), (13, 1));
    assert_eq!(one, three);
    // in order: frame i has a face unless i is a multiple of 3; frame 9 failed, in its place
    for (i, line) in three.2.iter().enumerate() {
        let want = match i {
            9 => "failed".to_string(),
            _ if i % 3 == 0 => format!("{i} 0"),
            _ => format!("{i} 1"),
        };
        assert!(line.starts_with(&want), "{i}: {line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
