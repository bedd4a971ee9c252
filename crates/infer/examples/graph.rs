//! The graph tensorcv runs, and where its time goes node by node: `cargo run --release -p
//! tensorcv-infer --example graph -- MODEL.onnx [tract]`. Prints every node of the optimized
//! model (op, details, output shape, mean time over 50 runs on a random input), with tensorcv's
//! kernels unless `tract` is given. `THREADS=2` runs tensorcv's kernels on a team of two.

use std::time::{Duration, Instant};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::{format_err, DimLike};
use tract_onnx::tract_hir::infer::Factoid;

fn main() -> TractResult<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or_else(|| format_err!("usage: graph MODEL.onnx [tract]"))?;
    let mode = args.next();
    let ours = mode.as_deref() != Some("tract");
    let mut model = tract_onnx::onnx().model_for_path(&path)?;
    let fact = model.input_fact(0)?.clone();
    let shape: Vec<usize> = fact
        .shape
        .dims()
        .map(|d| d.concretize().and_then(|d| d.to_usize().ok()).unwrap_or(1))
        .collect();
    model.set_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), &*shape))?;
    let mut typed = model.into_typed()?;
    typed.declutter()?;
    if ours && mode.as_deref() != Some("declutter") {
        let replaced = tensorcv_infer::rewrite::accelerate(&mut typed)?;
        eprintln!("{replaced:?}");
    }
    if mode.as_deref() == Some("declutter") {
        for id in typed.eval_order()? {
            let node = typed.node(id);
            let fact = typed.outlet_fact(OutletId::new(id, 0))?;
            println!(
                "{id:>4} {:<26} {:<14} <- {:?} {:?}",
                node.op().name(),
                format!("{:?}", fact.shape),
                node.inputs.iter().map(|o| o.node).collect::<Vec<_>>(),
                node.op()
            );
        }
        return Ok(());
    }
    typed.optimize()?;
    let plan = typed.clone().into_runnable()?;
    let mut state = TypedSimpleState::new(&plan)?;
    let input = Tensor::from_shape(
        &shape,
        &(0..shape.iter().product::<usize>())
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
            .collect::<Vec<_>>(),
    )?;
    let mut times = vec![Duration::ZERO; typed.nodes().len()];
    let runs = 50;
    let threads: usize = std::env::var("THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let team = tensorcv_kernels::team::Team::new(threads).map(std::sync::Arc::new);
    for run in 0..runs + 5 {
        let mut go = |state: &mut TypedSimpleState| {
            state.run_plan_with_eval(
                tvec!(input.clone().into_tvalue()),
                |ctx, op_state, node, inputs| {
                    let start = Instant::now();
                    let r = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
                    if run >= 5 {
                        times[node.id] += start.elapsed();
                    }
                    r
                },
            )
        };
        match &team {
            Some(t) if threads > 1 => t.scope(|| go(&mut state))?,
            _ => go(&mut state)?,
        };
    }
    let total: Duration = times.iter().sum();
    for id in typed.eval_order()? {
        let node = typed.node(id);
        let fact = typed.outlet_fact(OutletId::new(id, 0))?;
        let info = node.op().info()?.join("; ");
        let info: String = info.chars().take(110).collect();
        println!(
            "{id:>4} {:>8.1}us {:<26} {:<14} <- {:?} {info}",
            times[id].as_secs_f64() * 1e6 / runs as f64,
            node.op().name(),
            format!("{:?}", fact.shape),
            node.inputs.iter().map(|o| o.node).collect::<Vec<_>>()
        );
    }
    println!("total {:.3} ms", total.as_secs_f64() * 1e3 / runs as f64);
    Ok(())
}
