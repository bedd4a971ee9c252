//! The runner's shutdown: whichever stage fails — the sink (an error or a panic), the source
//! (an error, a panic, a read that never returns), a decoder — the run ends within a bounded
//! time and says why; nothing is left waiting on a queue.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tensorcv_capture::runner::{run, Event, RunOptions, Summary, Work};
use tensorcv_capture::{Error, Frame, FrameJob, Source, SourceInfo};
use tensorcv_imgproc::{Image, PixelFormat};
use tensorcv_infer::{Model, Task};

fn face() -> Model {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    Model::load(root.join("models/face_detection_short_range.onnx")).unwrap()
}

fn work() -> Work {
    Work::new(&face(), Some(Task::Detection), None).unwrap()
}

/// What the test source does at frame `at`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Trouble {
    /// nothing: frames until `frames`
    None,
    /// a fatal source error
    Error,
    /// a panic in `next_frame`
    Panic,
    /// a read that never returns (a silent pipe)
    Block,
    /// a decoding job that panics (image files decode in jobs)
    PanicInJob,
}

struct Troubled {
    info: SourceInfo,
    at: u64,
    trouble: Trouble,
    index: u64,
    in_jobs: bool,
    /// set when a blocked read would have returned (never, in these tests)
    released: Arc<AtomicBool>,
}

impl Troubled {
    fn new(frames: u64, at: u64, trouble: Trouble, live: bool) -> Self {
        Troubled {
            info: SourceInfo {
                name: "troubled".into(),
                width: Some(64),
                height: Some(48),
                format: "BGR".into(),
                fps: None,
                frames: Some(frames),
                live,
            },
            at,
            trouble,
            index: 0,
            in_jobs: trouble == Trouble::PanicInJob,
            released: Arc::new(AtomicBool::new(false)),
        }
    }

    fn frame(&self, index: u64) -> Frame {
        Frame {
            image: Image::new(64, 48, PixelFormat::Bgr8).unwrap(),
            index,
            timestamp: Duration::ZERO,
            name: None,
            scale: 1.0,
        }
    }
}

impl Source for Troubled {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> tensorcv_capture::Result<Option<Frame>> {
        let i = self.index;
        if self.info.frames.is_some_and(|n| i >= n) {
            return Ok(None);
        }
        self.index += 1;
        if i == self.at {
            match self.trouble {
                Trouble::Error => {
                    return Err(Error::Source {
                        source_name: "troubled".into(),
                        message: "the device is gone".into(),
                    })
                }
                Trouble::Panic => panic!("a source bug at frame {i}"),
                Trouble::Block => {
                    while !self.released.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                _ => {}
            }
        }
        Ok(Some(self.frame(i)))
    }

    fn next_job(&mut self) -> tensorcv_capture::Result<Option<FrameJob>> {
        let i = self.index;
        let frame = self.next_frame()?;
        let panics = self.trouble == Trouble::PanicInJob && i == self.at;
        Ok(frame.map(|f| {
            Box::new(move || {
                if panics {
                    panic!("a decoder bug in frame {i}");
                }
                Ok(f)
            }) as FrameJob
        }))
    }

    fn decodes_in_jobs(&self) -> bool {
        self.in_jobs
    }
}

/// What the sink does at one frame.
type SinkAction = fn(u64) -> tensorcv_capture::Result<()>;

/// Run and time it; the sink records frame indices and failures, and does `on` at the
/// `sink_at`-th frame it gets (counting from 0).
fn go(
    source: Troubled,
    options: &RunOptions,
    stop: &AtomicBool,
    sink_at: Option<(u64, SinkAction)>,
) -> (tensorcv_capture::Result<Summary>, Vec<String>, Duration) {
    let mut seen = Vec::new();
    let mut frames = 0;
    let t = Instant::now();
    let result = run(Box::new(source), work(), options, stop, &mut |e| {
        match e {
            Event::Frame(p) => {
                seen.push(p.frame.index.to_string());
                if let Some((at, on)) = sink_at {
                    if frames == at {
                        on(at)?;
                    }
                }
                frames += 1;
            }
            Event::Failed(e) => seen.push(format!("failed: {e}")),
        }
        Ok(())
    });
    (result, seen, t.elapsed())
}

fn threaded_and_sequential() -> [RunOptions; 2] {
    [
        RunOptions::default(),
        RunOptions {
            sequential: true,
            ..RunOptions::default()
        },
    ]
}

#[test]
fn a_sink_error_ends_the_run_with_that_error() {
    for options in threaded_and_sequential() {
        for live in [false, true] {
            let stop = AtomicBool::new(false);
            let source = Troubled::new(100_000, 0, Trouble::None, live);
            let (r, seen, took) = go(
                source,
                &options,
                &stop,
                Some((3, |_| {
                    Err(Error::Write {
                        path: "standard output".into(),
                        source: std::io::ErrorKind::BrokenPipe.into(),
                    })
                })),
            );
            let e = r.unwrap_err();
            assert!(e.is_broken_pipe(), "{e}");
            assert_eq!(seen.len(), 4, "nothing after the failing frame: {seen:?}");
            assert!(took < Duration::from_secs(5), "{took:?}");
        }
    }
}

#[test]
fn a_sink_panic_reaches_the_caller_after_the_threads_stop() {
    for options in threaded_and_sequential() {
        let t = Instant::now();
        let caught = std::panic::catch_unwind(|| {
            let stop = AtomicBool::new(false);
            let source = Troubled::new(100_000, 0, Trouble::None, false);
            go(
                source,
                &options,
                &stop,
                Some((2, |_| panic!("the sink broke"))),
            )
        });
        let payload = caught.expect_err("the sink's panic is resumed");
        assert_eq!(
            tensorcv_infer::panic_message(&*payload),
            "the sink broke",
            "the caller gets the sink's own panic"
        );
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}

#[test]
fn a_source_error_comes_after_the_frames_before_it() {
    for options in threaded_and_sequential() {
        let stop = AtomicBool::new(false);
        let (r, seen, _) = go(
            Troubled::new(20, 5, Trouble::Error, false),
            &options,
            &stop,
            None,
        );
        let e = r.unwrap_err();
        assert!(e.to_string().contains("the device is gone"), "{e}");
        assert_eq!(seen, ["0", "1", "2", "3", "4"]);
    }
}

#[test]
fn a_source_panic_is_an_internal_error_naming_the_reader() {
    for options in threaded_and_sequential() {
        for live in [false, true] {
            let stop = AtomicBool::new(false);
            let (r, seen, took) = go(
                Troubled::new(20, 4, Trouble::Panic, live),
                &options,
                &stop,
                None,
            );
            match r {
                Err(Error::Internal { stage, message }) => {
                    assert_eq!(stage, "reader");
                    assert!(message.contains("a source bug at frame 4"), "{message}");
                }
                other => panic!("{other:?}"),
            }
            if !live {
                assert_eq!(seen, ["0", "1", "2", "3"]);
            }
            assert!(took < Duration::from_secs(5));
        }
    }
}

#[test]
fn a_decoder_panic_fails_that_frame_only() {
    for options in threaded_and_sequential() {
        for decoders in [1, 3] {
            let stop = AtomicBool::new(false);
            let options = RunOptions {
                decoders,
                ..options.clone()
            };
            let (r, seen, _) = go(
                Troubled::new(8, 2, Trouble::PanicInJob, false),
                &options,
                &stop,
                None,
            );
            let s = r.unwrap();
            assert_eq!((s.processed, s.failed), (7, 1));
            assert_eq!(seen.len(), 8);
            assert!(
                seen[2].contains("internal error in the decoder stage")
                    && seen[2].contains("a decoder bug in frame 2"),
                "{seen:?}"
            );
        }
    }
}

#[test]
fn a_reader_blocked_forever_is_left_behind_when_the_run_stops() {
    for live in [false, true] {
        // stopped by the flag (Ctrl-C) while the reader waits on a read that never returns
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let flag = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            s2.store(true, Ordering::Relaxed);
        });
        let (r, seen, took) = go(
            Troubled::new(100, 3, Trouble::Block, live),
            &RunOptions::default(),
            &stop,
            None,
        );
        flag.join().unwrap();
        let s = r.unwrap();
        assert!(s.interrupted);
        if !live {
            assert_eq!(seen, ["0", "1", "2"], "the frames read before are finished");
        }
        assert!(
            took < Duration::from_millis(300 + 1500),
            "stopped within a second and a half of the flag: {took:?}"
        );
        // and by a failing sink, while the reader is blocked
        let stop = AtomicBool::new(false);
        let (r, _, took) = go(
            Troubled::new(100, 2, Trouble::Block, live),
            &RunOptions::default(),
            &stop,
            Some((0, |_| {
                Err(Error::Write {
                    path: "out".into(),
                    source: std::io::ErrorKind::StorageFull.into(),
                })
            })),
        );
        assert!(matches!(r, Err(Error::Write { .. })), "{r:?}");
        assert!(took < Duration::from_millis(1500), "{took:?}");
    }
}

#[test]
fn options_out_of_range_are_refused_before_anything_runs() {
    let stop = AtomicBool::new(false);
    for (options, setting) in [
        (
            RunOptions {
                fps: Some(f64::NAN),
                ..Default::default()
            },
            "fps",
        ),
        (
            RunOptions {
                fps: Some(1e-300),
                ..Default::default()
            },
            "fps",
        ),
        (
            RunOptions {
                fps: Some(f64::INFINITY),
                ..Default::default()
            },
            "fps",
        ),
        (
            RunOptions {
                every: 0,
                ..Default::default()
            },
            "every",
        ),
        (
            RunOptions {
                queue: 0,
                ..Default::default()
            },
            "queue",
        ),
        (
            RunOptions {
                decoders: 100_000,
                ..Default::default()
            },
            "decoders",
        ),
        (
            RunOptions {
                max_frames: Some(0),
                ..Default::default()
            },
            "max_frames",
        ),
    ] {
        let (r, seen, _) = go(
            Troubled::new(5, 0, Trouble::None, false),
            &options,
            &stop,
            None,
        );
        match r {
            Err(Error::Invalid { setting: s, .. }) => assert_eq!(s, setting),
            other => panic!("{setting}: {other:?}"),
        }
        assert!(seen.is_empty());
    }
}
