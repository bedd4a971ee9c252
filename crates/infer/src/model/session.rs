//! Running a model on images: a [`Session`] holds one thread's preprocessing buffers and input
//! tensor; [`Outputs`] are what a run gives, by name.

use super::{fill, Model};
use crate::error::{Error, Result};
use std::fmt;
use std::sync::Arc;
use tensorcv_imgproc::geometry::Transform;
use tensorcv_imgproc::tensor::{Preprocessor, Tensor as ImgTensor};
use tensorcv_imgproc::ImageView;
use tract_onnx::prelude::*;

impl Model {
    /// A session: the model plus its own preprocessing buffers, for one thread.
    pub fn session(&self) -> Result<Session> {
        let pre = Preprocessor::try_new(self.input_spec().clone())?;
        let tensor = self.input_spec().alloc(self.batch());
        let input = self.input_tensor(&tensor)?;
        Ok(Session {
            model: self.clone(),
            pre,
            tensor,
            input: Arc::new(input),
        })
    }
}

/// A model with its preprocessing buffers: runs images one after another, reusing its input
/// tensors.
pub struct Session {
    model: Model,
    pre: Preprocessor,
    tensor: ImgTensor,
    input: Arc<Tensor>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("spec", self.pre.spec())
            .finish()
    }
}

impl Session {
    /// Preprocess `image` (any pixel format) as the card says and run the model. Returns the
    /// outputs and the transform from image pixels to model-input pixels. A model loaded for a
    /// batch of N gets the image in every slot (preprocessed once); see [`Session::run_batch`].
    pub fn run(&mut self, image: &ImageView<'_>) -> Result<(Outputs, Transform)> {
        let transform = self.prepare(image)?;
        Ok((self.run_prepared()?, transform))
    }

    /// Run a batch: exactly [`Model::batch`] images, one transform each.
    pub fn run_batch(&mut self, images: &[ImageView<'_>]) -> Result<(Outputs, Vec<Transform>)> {
        if images.len() != self.model.batch() {
            return Err(Error::Input {
                input: self.model.info().inputs[0].name.clone(),
                message: format!(
                    "the model was loaded for batches of {}, {} images given",
                    self.model.batch(),
                    images.len()
                ),
            });
        }
        let transforms = images
            .iter()
            .enumerate()
            .map(|(i, image)| self.pre.run(image, &mut self.tensor, i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((self.run_prepared()?, transforms))
    }

    /// Preprocess `image` into the session's input (every batch slot), returning the transform
    /// from image pixels to model-input pixels; [`Session::run_prepared`] runs it. `run` is the
    /// two together; apart, they can be timed apart.
    pub fn prepare(&mut self, image: &ImageView<'_>) -> Result<Transform> {
        let transform = self.pre.run(image, &mut self.tensor, 0)?;
        self.tensor.repeat_first();
        Ok(transform)
    }

    /// The input made by the last [`Session::prepare`] (or `run`, `preprocess`).
    pub fn input(&self) -> &ImgTensor {
        &self.tensor
    }

    /// Preprocess without running: the exact tensor the model would get.
    pub fn preprocess(&mut self, image: &ImageView<'_>) -> Result<&ImgTensor> {
        self.prepare(image)?;
        Ok(&self.tensor)
    }

    /// Run the model on the input made by the last [`Session::prepare`] (or `run`).
    pub fn run_prepared(&mut self) -> Result<Outputs> {
        // tract has dropped its references after the previous run: reuse the input tensor
        match Arc::get_mut(&mut self.input) {
            Some(t) => fill(t, &self.tensor)?,
            None => self.input = Arc::new(self.model.input_tensor(&self.tensor)?),
        }
        self.model.run_value(self.input.clone().into_tvalue())
    }

    /// Run the model on a tensor made elsewhere (by a [`Preprocessor`] of
    /// [`Model::input_spec`] on another thread, say), reusing this session's input buffer.
    pub fn run_tensor(&mut self, input: &ImgTensor) -> Result<Outputs> {
        self.model.check_tensor(input)?;
        match Arc::get_mut(&mut self.input) {
            Some(t) => fill(t, input)?,
            None => self.input = Arc::new(self.model.input_tensor(input)?),
        }
        self.model.run_value(self.input.clone().into_tvalue())
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }
}

/// A model's outputs, by name, as `f32` arrays (quantized outputs are dequantized).
#[derive(Clone, Debug)]
pub struct Outputs {
    pub(super) names: Vec<String>,
    pub(super) values: Vec<tract_ndarray::ArrayD<f32>>,
}

impl Outputs {
    /// Outputs from names and arrays made elsewhere (another engine, a test); one array per
    /// name.
    pub fn new(names: Vec<String>, values: Vec<tract_ndarray::ArrayD<f32>>) -> Result<Outputs> {
        if names.len() != values.len() {
            return Err(Error::Run(format!(
                "{} output names for {} arrays",
                names.len(),
                values.len()
            )));
        }
        Ok(Outputs { names, values })
    }

    /// The output called `name`; the error lists the names that exist.
    pub fn get(&self, name: &str) -> Result<&tract_ndarray::ArrayD<f32>> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.values[i])
            .ok_or_else(|| Error::UnknownOutput {
                name: name.to_string(),
                available: self.names.join(", "),
            })
    }
    /// Output names, in the model's order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
    /// Output `i` in the model's order.
    pub fn by_index(&self, i: usize) -> Option<&tract_ndarray::ArrayD<f32>> {
        self.values.get(i)
    }
}
