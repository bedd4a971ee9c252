//! tensorcv in the browser: a model (a built-in of the zoo, or model bytes with a card) run on
//! RGBA pixels — an `ImageData`, or what the JavaScript glue draws of an `<img>`, a `<video>`
//! frame or a camera — giving the `tensorcv` command's JSON record, and the segmentation mask
//! as RGBA for an `ImageData`.
//!
//! [`Engine`] is the whole of it, plain Rust (built and tested natively too); on
//! `wasm32-unknown-unknown` the [`bindings`] module exports it to JavaScript with wasm-bindgen.
//! `web/` holds the JavaScript around it: a Web Worker that owns the engine (`worker.js`), the
//! page's API over it (`tensorcv.js`) and the demo (`index.html`); `web/build.sh` builds the
//! site (README "WebAssembly").

use tensorcv_imgproc::{Image, ImageView, PixelFormat};
use tensorcv_infer::{LoadOptions, Model, ModelCard, ModelFile, Task};
use tensorcv_tasks::{Pipeline, Record};

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub mod bindings;

/// What can go wrong in the browser package.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `name` is not one of the built-in models
    #[error("no built-in model '{name}' (built-ins: {builtins})")]
    UnknownModel { name: String, builtins: String },
    /// a task name that is not one
    #[error("unknown task '{0}' (classify, detect, segment, run)")]
    UnknownTask(String),
    /// the pixels are not `width × height × 4` bytes
    #[error("{width}×{height} RGBA pixels are {want} bytes, not {got}")]
    PixelBytes {
        width: usize,
        height: usize,
        want: usize,
        got: usize,
    },
    /// loading or running the model
    #[error(transparent)]
    Infer(#[from] tensorcv_infer::Error),
    /// the model's outputs, as the task reads them
    #[error(transparent)]
    Tasks(#[from] tensorcv_tasks::Error),
    /// pixels (a size of zero, say)
    #[error(transparent)]
    Image(#[from] tensorcv_imgproc::Error),
}

/// The package's results.
pub type Result<T> = std::result::Result<T, Error>;

/// A task by the command's name for it: `classify`, `detect`, `segment`, or `run` (the card's
/// own task, as `tensorcv run` does).
pub fn parse_task(name: &str) -> Result<Option<Task>> {
    Ok(match name {
        "classify" => Some(Task::Classification),
        "detect" => Some(Task::Detection),
        "segment" => Some(Task::Segmentation),
        "run" | "" => None,
        other => return Err(Error::UnknownTask(other.to_string())),
    })
}

/// The built-in models' names, as `tensorcv models` lists them.
pub fn builtins() -> Vec<&'static str> {
    tensorcv_zoo::BUILTINS.iter().map(|b| b.name).collect()
}

/// One loaded model and what it last found.
pub struct Engine {
    model: Model,
    name: String,
    /// a pipeline per task asked for (made on first use: each holds a session)
    pipelines: Vec<(Option<Task>, Pipeline)>,
    /// the last image's segmentation, coloured as `--save` writes it, RGBA
    mask: Option<Image>,
    /// frames run so far (the records' `frame`)
    frames: u64,
}

impl Engine {
    /// The built-in model `name` with its card (`face`, `selfie`, …: [`builtins`]).
    pub fn builtin(name: &str) -> Result<Engine> {
        let b = tensorcv_zoo::find(name).ok_or_else(|| Error::UnknownModel {
            name: name.to_string(),
            builtins: builtins().join(", "),
        })?;
        let what = format!("built-in '{}'", b.name);
        Self::load(b.bytes, Some(b.card), &what, b.name)
    }

    /// A model file's bytes (ONNX or TFLite) with its card's TOML text; without a card, the
    /// model's metadata or the defaults, as for a file with no sidecar card. `name` names it in
    /// errors.
    pub fn from_bytes(bytes: &[u8], card: Option<&str>, name: &str) -> Result<Engine> {
        Self::load(bytes, card, name, name)
    }

    fn load(bytes: &[u8], card: Option<&str>, what: &str, name: &str) -> Result<Engine> {
        let mut file = ModelFile::from_bytes(bytes, what)?;
        if let Some(card) = card {
            file.set_card(ModelCard::parse(card, what)?);
        }
        let model = file.build(&LoadOptions {
            threads: 1,
            ..Default::default()
        })?;
        Ok(Engine {
            model,
            name: name.to_string(),
            pipelines: Vec::new(),
            mask: None,
            frames: 0,
        })
    }

    /// The model's name (the built-in's, or the one given with its bytes).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The model's own task, as its card says.
    pub fn task(&self) -> Task {
        self.model.card().model.task
    }

    /// The model's input size as the card fixes it (`[width, height]`).
    pub fn input_size(&self) -> [usize; 2] {
        let spec = self.model.input_spec();
        [spec.width, spec.height]
    }

    /// Run `task` (`None`: the card's) on `width × height` RGBA pixels (an `ImageData`'s
    /// bytes; alpha is ignored), as frame `frame` of `source`: the command's record for it
    /// (`timings_ms` holds preprocess, inference and postprocess; decode is the caller's).
    /// A segmentation's mask is kept for [`Engine::mask`].
    pub fn run(
        &mut self,
        task: Option<Task>,
        rgba: &[u8],
        width: usize,
        height: usize,
        source: &str,
    ) -> Result<Record> {
        let want = width.saturating_mul(height).saturating_mul(4);
        if rgba.len() != want {
            return Err(Error::PixelBytes {
                width,
                height,
                want,
                got: rgba.len(),
            });
        }
        let image = ImageView::new(rgba, width, height, PixelFormat::Rgba8)?;
        let at = match self.pipelines.iter().position(|(t, _)| *t == task) {
            Some(i) => i,
            None => {
                self.pipelines
                    .push((task, Pipeline::new(&self.model, task)?));
                self.pipelines.len() - 1
            }
        };
        let pipeline = &mut self.pipelines[at].1;
        let analysis = pipeline.process(&image)?;
        let labels = pipeline.postprocess().labels();
        let segmentation = analysis.outcome.segmentation(width, height)?;
        let mut record = Record::new(source, self.frames, width, height);
        record.outcome(&analysis.outcome, segmentation.as_deref(), labels, None);
        let t = analysis.timings;
        record.set_timings(0.0, t.preprocess, t.inference, t.postprocess);
        match &segmentation {
            Some(seg) => self.keep_mask(&seg.colorized()?)?,
            None => self.mask = None,
        }
        self.frames += 1;
        Ok(record)
    }

    /// [`Engine::run`]'s record as the command prints it with `--json`: one line of JSON.
    pub fn run_json(
        &mut self,
        task: Option<Task>,
        rgba: &[u8],
        width: usize,
        height: usize,
        source: &str,
    ) -> Result<String> {
        let record = self.run(task, rgba, width, height, source)?;
        // a record holds only numbers, strings and string-keyed maps: it always serializes
        Ok(serde_json::to_string(&record).unwrap_or_default())
    }

    /// Keep `rgb` as the mask, opaque RGBA, in last frame's buffer when the size is the same.
    fn keep_mask(&mut self, rgb: &Image) -> Result<()> {
        let (w, h) = (rgb.width(), rgb.height());
        let mask = match self.mask.take() {
            Some(m) if (m.width(), m.height()) == (w, h) => m,
            _ => Image::new(w, h, PixelFormat::Rgba8)?,
        };
        let mask = self.mask.insert(mask);
        tensorcv_imgproc::color::convert(&rgb.view(), &mut mask.view_mut())?;
        Ok(())
    }

    /// The last run's segmentation mask, RGBA at the image's size (the classes' colours, as
    /// `tensorcv segment --save` writes them; alpha 255); `None` when it found none.
    pub fn mask(&self) -> Option<&Image> {
        self.mask.as_ref()
    }
}
