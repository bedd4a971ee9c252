//! Run a model with a card on an image, print the results and save the annotated image:
//! `cargo run --release -p tensorcv-tasks --example annotate -- MODEL IMAGE OUT.png`.
//! The task (classification, detection, segmentation) comes from the card.

use tensorcv_imgproc::io::{imread, imwrite, DecodeOptions};
use tensorcv_infer::{Model, Task};
use tensorcv_tasks::classification::{classify_outputs, ClassifySettings};
use tensorcv_tasks::segmentation::{segment, SegmentSettings};
use tensorcv_tasks::visualize::{draw_classes, draw_detections, draw_legend};
use tensorcv_tasks::Detector;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model_path, image_path, out] = &args[..] else {
        return Err("usage: annotate MODEL IMAGE OUT.png".into());
    };
    let model = Model::load(model_path)?;
    let mut image = imread(image_path, &DecodeOptions::default())?;
    let (outputs, transform) = model.session()?.run(&image.view())?;
    let labels = &model.card().labels;
    match model.card().model.task {
        Task::Classification => {
            let settings = ClassifySettings::from_card(model.card())?;
            let classes = classify_outputs(&outputs, &settings, labels)?;
            for c in &classes {
                println!("{:<10} {:.4}", c.label.as_deref().unwrap_or("?"), c.score);
            }
            draw_classes(&mut image.view_mut(), &classes);
        }
        Task::Detection => {
            let detections = Detector::for_model(&model)?.detect(&outputs, &transform)?;
            for d in &detections {
                let b = d.bbox;
                println!(
                    "{} {:.3} box [{:.1}, {:.1}, {:.1}, {:.1}], {} keypoints",
                    d.label.as_deref().unwrap_or("?"),
                    d.score,
                    b[0],
                    b[1],
                    b[2],
                    b[3],
                    d.keypoints.len()
                );
            }
            draw_detections(&mut image.view_mut(), &detections);
        }
        Task::Segmentation => {
            let settings = SegmentSettings::from_card(model.card())?;
            let (w, h) = (image.width(), image.height());
            let seg = segment(&outputs, &settings, &transform, w, h)?;
            let shares = seg.fractions(labels);
            for s in &shares {
                let name = s.label.clone().unwrap_or(format!("class {}", s.index));
                println!("{name:<12} {:.1}%", s.fraction * 100.0);
            }
            seg.overlay(&mut image.view_mut(), 0.5)?;
            draw_legend(&mut image.view_mut(), &shares);
        }
        Task::Landmarks => {
            return Err(
                "landmark models need a detector first: see `tensorcv landmarks` or \
                 Pipeline::with_regions_from"
                    .into(),
            )
        }
        Task::Raw => return Err("the card names no task".into()),
    }
    imwrite(out, &image.view())?;
    println!("wrote {out}");
    Ok(())
}
