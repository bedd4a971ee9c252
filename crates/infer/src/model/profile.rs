//! Timing a model: whole runs ([`Model::time_runs`]) and tract's per-operator profile
//! ([`Model::profile`]).

// (on wasm, which has no clock, only the result types are here)
#![cfg_attr(
    all(target_family = "wasm", target_os = "unknown"),
    allow(unused_imports)
)]

use super::Model;
use crate::error::{one_line, Error, Result};
use tensorcv_imgproc::tensor::Tensor as ImgTensor;
use tract_onnx::prelude::*;

impl Model {
    /// Time one first run, then `runs` more, of inference alone on `input` (one session,
    /// its input buffer reused, as a stream runs it). Not on wasm32-unknown-unknown (no clock there; WASI has one).
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    pub fn time_runs(&self, input: &ImgTensor, runs: usize) -> Result<RunTimes> {
        use std::time::Instant;
        let mut session = self.session()?;
        let t = Instant::now();
        session.run_tensor(input)?;
        let first = t.elapsed().as_secs_f64() * 1e3;
        let mut times = Vec::with_capacity(runs.max(1));
        for _ in 0..runs.max(1) {
            let t = Instant::now();
            session.run_tensor(input)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let at =
            |q: f64| times[((q * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1];
        Ok(RunTimes {
            first,
            median: at(0.5),
            p95: at(0.95),
            min: times[0],
            mean: times.iter().sum::<f64>() / times.len() as f64,
            runs: times.len(),
        })
    }

    /// Time every operator over `runs` runs on `input`: tract's per-op profile, operators of
    /// the same kind summed, slowest first. Not on wasm32-unknown-unknown (no clock there; WASI has one).
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    pub fn profile(&self, input: &ImgTensor, runs: usize) -> Result<Vec<OpTime>> {
        use std::time::Instant;
        self.check_tensor(input)?;
        let err = |e: TractError| Error::Run(one_line(&e));
        let mut state = TypedSimpleState::new(self.plan()).map_err(err)?;
        let mut times: Vec<OpTime> = Vec::new();
        let run_all = || -> Result<()> {
            for _ in 0..runs.max(1) {
                let value = self.input_tensor(input)?.into_tvalue();
                state
                    .run_plan_with_eval(tvec!(value), |ctx, op_state, node, inputs| {
                        let start = Instant::now();
                        let r = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
                        let op = node.op().name().to_string();
                        let elapsed = start.elapsed();
                        match times.iter_mut().find(|t| t.op == op) {
                            Some(t) => t.time += elapsed,
                            None => times.push(OpTime {
                                op,
                                nodes: 0,
                                time: elapsed,
                            }),
                        }
                        r
                    })
                    .map_err(err)?;
            }
            Ok(())
        };
        self.threaded(run_all)?;
        let model = self.plan().model();
        for t in &mut times {
            t.nodes = model
                .nodes()
                .iter()
                .filter(|n| n.op().name() == t.op)
                .count();
            t.time /= runs.max(1) as u32;
        }
        times.sort_by_key(|t| std::cmp::Reverse(t.time));
        Ok(times)
    }
}

/// Inference times of [`Model::time_runs`], in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct RunTimes {
    /// the first run (caches cold, lazy buffers allocated)
    pub first: f64,
    /// the median of the timed runs
    pub median: f64,
    /// their 95th percentile
    pub p95: f64,
    /// the fastest
    pub min: f64,
    /// their mean
    pub mean: f64,
    /// how many runs were timed
    pub runs: usize,
}

/// One kind of operator in a [`Model::profile`]: how many nodes, and their time per run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpTime {
    /// tract's operator name (`Conv`, `MatMul`, `Add`, ...)
    pub op: String,
    /// nodes of this kind in the optimized model
    pub nodes: usize,
    /// their total time in one run
    pub time: std::time::Duration,
}
