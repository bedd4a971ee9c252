//! Zoo models in tract: load + optimize, and one inference (the input tensor already made) at
//! 1 and 2 threads, with tensorcv's kernels (`run_1t`) and with tract's own operators only
//! (`run_1t_tract`: the kernels' lever). `tools/bench_zoo.py` runs the same models in
//! onnxruntime and TensorFlow on the same input and prints the ratios.

use criterion::{criterion_group, criterion_main, Criterion};
use tensorcv_benches::bench_models;
use tensorcv_imgproc::io::{imread, DecodeOptions};
use tensorcv_infer::{LoadOptions, Model};

fn infer(c: &mut Criterion) {
    let photo = imread(
        tensorcv_benches::data_dir().join("astronaut.png"),
        &DecodeOptions::default(),
    )
    .expect("the photo decodes");
    for path in bench_models() {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&path).expect("the model reads");
        let card = Model::load(&path).expect("the model loads").card().clone();
        let options = |threads, tract_only| LoadOptions {
            card: Some(card.clone()),
            threads,
            tract_only,
            ..Default::default()
        };
        c.bench_function(&format!("infer/{name}/load"), |b| {
            b.iter(|| Model::from_bytes(&bytes, options(1, false)).unwrap())
        });
        for (threads, tract_only) in [(1, false), (2, false), (1, true), (2, true)] {
            let model = Model::from_bytes(&bytes, options(threads, tract_only)).unwrap();
            let tensor = model
                .session()
                .unwrap()
                .preprocess(&photo.view())
                .unwrap()
                .clone();
            let which = if tract_only { "_tract" } else { "" };
            c.bench_function(&format!("infer/{name}/run_{threads}t{which}"), |b| {
                b.iter(|| model.run_tensor(&tensor).unwrap())
            });
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = infer
}
criterion_main!(benches);
