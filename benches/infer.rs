//! Zoo models in tract: load + optimize, and one inference (the input tensor already made) at
//! 1 and 2 threads. `tools/bench_zoo.py` runs the same models in onnxruntime and TensorFlow on
//! the same input and prints the ratios.

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
        let options = |threads| LoadOptions {
            card: Some(card.clone()),
            threads,
            ..Default::default()
        };
        c.bench_function(&format!("infer/{name}/load"), |b| {
            b.iter(|| Model::from_bytes(&bytes, options(1)).unwrap())
        });
        for threads in [1, 2] {
            let model = Model::from_bytes(&bytes, options(threads)).unwrap();
            let tensor = model
                .session()
                .unwrap()
                .preprocess(&photo.view())
                .unwrap()
                .clone();
            c.bench_function(&format!("infer/{name}/run_{threads}t"), |b| {
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
