//! The engine for JavaScript (wasm-bindgen): `web/worker.js` holds one [`WebModel`] per loaded
//! model and calls it with an `ImageData`'s bytes.

use crate::{parse_task, Engine};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`, in a window and in a worker alike
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Once, when the module is instantiated: the pipeline's stage timings from the browser's clock,
/// and a panic reported to the console as the message it is.
#[wasm_bindgen(start)]
pub fn start() {
    tensorcv_tasks::set_clock(performance_now);
    std::panic::set_hook(Box::new(|info| {
        web_log(&format!(
            "tensorcv panicked: {}",
            tensorcv_infer::panic_report(info)
        ));
    }));
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn web_log(s: &str);
}

/// The built-in models' names, as a JSON array.
#[wasm_bindgen]
pub fn builtins() -> String {
    serde_json::to_string(&crate::builtins()).unwrap_or_default()
}

/// The SIMD levels in use: `kernels X, imgproc Y` (as `tensorcv --version` says).
#[wasm_bindgen]
pub fn simd() -> String {
    format!(
        "kernels {}, imgproc {}",
        tensorcv_infer::simd_level(),
        tensorcv_imgproc::simd_level()
    )
}

fn js_error(e: crate::Error) -> JsError {
    JsError::new(&e.to_string())
}

/// A loaded model.
#[wasm_bindgen]
pub struct WebModel(Engine);

#[wasm_bindgen]
impl WebModel {
    /// The built-in model `name`.
    pub fn builtin(name: &str) -> Result<WebModel, JsError> {
        Engine::builtin(name).map(WebModel).map_err(js_error)
    }

    /// A model file's bytes with its card (TOML text, or `undefined` for the model's metadata
    /// or the defaults); `name` names it in errors and records.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8], card: Option<String>, name: &str) -> Result<WebModel, JsError> {
        Engine::from_bytes(bytes, card.as_deref(), name)
            .map(WebModel)
            .map_err(js_error)
    }

    /// The model's name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.0.name().to_string()
    }

    /// The card's task: `classification`, `detection`, `segmentation` or `raw`.
    #[wasm_bindgen(getter)]
    pub fn task(&self) -> String {
        self.0.task().name().to_string()
    }

    /// `[width, height]` of the model's input.
    #[wasm_bindgen(getter, js_name = inputSize)]
    pub fn input_size(&self) -> Vec<u32> {
        self.0.input_size().iter().map(|&v| v as u32).collect()
    }

    /// Run `task` (`classify`, `detect`, `segment`, or `run` for the card's) on RGBA pixels
    /// (`ImageData.data`): the record's JSON line.
    pub fn run(
        &mut self,
        task: &str,
        rgba: &[u8],
        width: u32,
        height: u32,
        source: &str,
    ) -> Result<String, JsError> {
        let task = parse_task(task).map_err(js_error)?;
        self.0
            .run_json(task, rgba, width as usize, height as usize, source)
            .map_err(js_error)
    }

    /// The last run's mask as RGBA bytes at the image's size (for `new ImageData`), or
    /// `undefined`.
    pub fn mask(&self) -> Option<Vec<u8>> {
        self.0.mask().map(|m| m.as_bytes().to_vec())
    }
}
