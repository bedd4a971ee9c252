//! The per-frame sink of a run: each result drawn, saved, written to the video and the
//! preview, and printed as a record; tensors dumped with `--dump`.

use crate::error::STDOUT;
use crate::flags::TaskArgs;
use crate::{output, warn};
use std::io::Write;
use std::path::Path;
use std::time::Instant;
use tensorcv_capture::runner::{Event, Processed};
use tensorcv_capture::serve::PreviewServer;
use tensorcv_capture::sink::VideoSink;
use tensorcv_capture::{self as capture, SourceInfo};
use tensorcv_imgproc::io::imwrite;
use tensorcv_tasks::record::Record;
use tensorcv_tasks::segmentation::Background;
use tensorcv_tasks::visualize::draw_outcome;

/// What one input's frames are written to, and what the sink counts.
pub struct Stream<'a> {
    pub args: &'a TaskArgs,
    pub info: &'a SourceInfo,
    /// a video or live source (not image files): frames are numbered in names and records
    pub stream: bool,
    pub effect: Option<&'a mut Background>,
    pub video: &'a mut Option<VideoSink>,
    pub server: Option<&'a PreviewServer>,
    pub progress: &'a output::Progress,
    pub failures: &'a mut Vec<String>,
    pub labels: Vec<String>,
    /// lines between landmark points
    pub connections: Vec<[usize; 2]>,
    /// a landmark model: every record says `landmarks`, empty when none were found
    pub landmarks: bool,
    pub processed: u64,
    pub started: Instant,
}

impl Stream<'_> {
    /// One runner event: a result to draw, write and print, or a failure to report.
    pub fn handle(&mut self, event: Event) -> capture::Result<()> {
        let p = match event {
            Event::Failed(e) => {
                let message = e.to_string();
                self.progress.println(|| warn(&message));
                self.failures.push(message);
                self.progress.inc();
                return Ok(());
            }
            Event::Frame(p) => p,
        };
        let record = self.frame(*p)?;
        let text = output::render(&record, self.args.json);
        // a video on standard output keeps it: the records go to stderr then
        let video_on_stdout = self
            .args
            .output
            .as_deref()
            .is_some_and(|o| o.starts_with('-'));
        self.progress.println(|| {
            if video_on_stdout {
                let _ = std::io::stderr().write_all(text.as_bytes());
                Ok(())
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|source| capture::Error::Write {
                        path: STDOUT.into(),
                        source,
                    })
            }
        })?;
        self.progress.inc();
        Ok(())
    }

    fn frame(&mut self, p: Processed) -> capture::Result<Record> {
        let args = self.args;
        let Processed {
            frame,
            analysis,
            outputs,
            input,
            times,
            ..
        } = p;
        let mut image = frame.image;
        let name = frame.name.clone().unwrap_or_else(|| self.info.name.clone());
        let t0 = Instant::now();
        let base = Path::new(&name)
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let stem = if self.stream {
            format!("{base}_{:05}", frame.index)
        } else {
            base
        };
        let saved = |path: &Path, e: tensorcv_imgproc::Error| capture::Error::Sink {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if let (Some(dir), Some(outputs), Some(input)) = (&args.dump, &outputs, &input) {
            dump(dir, &stem, input, outputs)?;
        }
        let labels = &self.labels;
        let (w, h) = (image.width(), image.height());
        let seg = analysis
            .outcome
            .segmentation(w, h)
            .map_err(capture::Error::from)?;
        let mut mask_path = None;
        if let (Some(dir), Some(seg)) = (&args.save, &seg) {
            let path = dir.join(format!("{stem}.mask.png"));
            let colors = seg.colorized().map_err(capture::Error::from)?;
            imwrite(&path, &colors.view()).map_err(|e| saved(&path, e))?;
            mask_path = Some(path.display().to_string());
        }
        let mut record = Record::new(&name, frame.index, w, h);
        if frame.scale != 1.0 {
            record.set_scale(frame.scale);
        }
        if self.stream {
            record.set_timestamp(frame.timestamp.as_secs_f64() * 1e3);
        }
        record.outcome(&analysis.outcome, seg.as_deref(), labels, mask_path);
        if self.landmarks && record.landmarks.is_none() {
            record.landmarks = Some(Vec::new());
        }
        let drawn = args.save.is_some() || args.output.is_some() || self.server.is_some();
        if drawn {
            match (self.effect.as_deref_mut(), &seg) {
                (Some(effect), Some(seg)) => effect
                    .apply(seg, &mut image.view_mut())
                    .map_err(capture::Error::from)?,
                _ => draw_outcome(
                    &mut image.view_mut(),
                    &analysis.outcome,
                    seg.as_deref(),
                    labels,
                    0.5,
                    &self.connections,
                )
                .map_err(capture::Error::from)?,
            }
        }
        if let Some(dir) = &args.save {
            let path = dir.join(format!("{stem}.png"));
            imwrite(&path, &image.view()).map_err(|e| saved(&path, e))?;
        }
        if let Some(out) = &args.output {
            if self.video.is_none() {
                let fps = args.fps.or(self.info.fps).unwrap_or(25.0) / args.every.max(1) as f64;
                *self.video = Some(VideoSink::create(out, w, h, fps)?);
            }
            if let Some(v) = self.video.as_mut() {
                v.write(&image.view())?;
            }
        }
        self.processed += 1;
        if let Some(server) = self.server {
            let fps = self.processed as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            let results = output::json_line(&record);
            server.publish(&image.view(), frame.index, &results, fps)?;
        }
        let post = times.postprocess + t0.elapsed().as_secs_f64() * 1e3;
        record.set_timings(times.decode, times.preprocess, times.inference, post);
        Ok(record)
    }
}

/// `--dump`: the model input and every output of one image as `.npy`
/// (`DIR/<image>.input.npy`, `DIR/<image>.<output>.npy`, output names made file-safe).
fn dump(
    dir: &Path,
    stem: &str,
    input: &tensorcv_imgproc::tensor::Tensor,
    outputs: &tensorcv_infer::Outputs,
) -> capture::Result<()> {
    use tensorcv_infer::npy::{tensor_to_npy, to_npy};
    let write = |name: &str, bytes: Vec<u8>| {
        let path = dir.join(format!("{stem}.{name}.npy"));
        std::fs::write(&path, bytes).map_err(|source| capture::Error::Write {
            path: path.display().to_string(),
            source,
        })
    };
    write("input", tensor_to_npy(input))?;
    for (i, name) in outputs.names().iter().enumerate() {
        let Some(a) = outputs.by_index(i) else {
            continue;
        };
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        write(&safe, to_npy(a.shape(), a.iter().copied()))?;
    }
    Ok(())
}
