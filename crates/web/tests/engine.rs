//! The browser package's engine, natively: the records it gives for RGBA pixels are the
//! command's (the same pipeline on the decoded file), and bad input is a typed error.

use std::path::PathBuf;
use tensorcv_imgproc::io::{imread, DecodeOptions};
use tensorcv_imgproc::{color, PixelFormat};
use tensorcv_infer::Task;
use tensorcv_web::{parse_task, Engine, Error};

fn photo(name: &str) -> tensorcv_imgproc::Image {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/imgproc")
        .join(name);
    imread(&path, &DecodeOptions::default()).unwrap()
}

fn rgba(name: &str) -> (Vec<u8>, usize, usize) {
    let bgr = photo(name);
    let out = color::convert_to(&bgr.view(), PixelFormat::Rgba8).unwrap();
    (out.as_bytes().to_vec(), out.width(), out.height())
}

/// The record as `tensorcv` makes it: the card's pipeline on the BGR image the file decodes to.
fn command_record(model: &str, task: Option<Task>, name: &str) -> serde_json::Value {
    let b = tensorcv_zoo::find(model).unwrap();
    let mut file = tensorcv_infer::ModelFile::from_bytes(b.bytes, model).unwrap();
    file.set_card(tensorcv_infer::ModelCard::parse(b.card, model).unwrap());
    let m = file.build(&Default::default()).unwrap();
    let mut p = tensorcv_tasks::Pipeline::new(&m, task).unwrap();
    let image = photo(name);
    let a = p.process(&image.view()).unwrap();
    let (w, h) = (image.width(), image.height());
    let seg = a.outcome.segmentation(w, h).unwrap();
    let mut r = tensorcv_tasks::Record::new(name, 0, w, h);
    r.outcome(&a.outcome, seg.as_deref(), p.postprocess().labels(), None);
    serde_json::to_value(&r).unwrap()
}

fn without_timings(mut v: serde_json::Value) -> serde_json::Value {
    v.as_object_mut().unwrap().remove("timings_ms");
    v
}

#[test]
fn rgba_pixels_give_the_commands_records() {
    for (model, task, name) in [
        ("face", Some(Task::Detection), "astronaut.png"),
        ("selfie", None, "astronaut.png"),
        ("emotion", Some(Task::Classification), "astronaut.png"),
        ("shapes", None, "chelsea.png"),
    ] {
        let (px, w, h) = rgba(name);
        let mut e = Engine::builtin(model).unwrap();
        let line = e.run_json(task, &px, w, h, name).unwrap();
        let got: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(
            got["timings_ms"]["inference"].as_f64().unwrap() > 0.0,
            "{line}"
        );
        assert_eq!(
            without_timings(got),
            without_timings(command_record(model, task, name)),
            "{model} on {name}"
        );
        // a mask for segmentations only, RGBA at the image's size
        match e.mask() {
            Some(m) => {
                assert_eq!(model, "selfie");
                assert_eq!(
                    (m.width(), m.height(), m.format()),
                    (w, h, PixelFormat::Rgba8)
                );
            }
            None => assert_ne!(model, "selfie"),
        }
    }
}

#[test]
fn frames_count_up_and_tasks_are_the_commands_names() {
    let (px, w, h) = rgba("astronaut.png");
    let mut e = Engine::builtin("face").unwrap();
    assert_eq!(
        (e.name(), e.task(), e.input_size()),
        ("face", Task::Detection, [128, 128])
    );
    for frame in 0..3 {
        assert_eq!(e.run(None, &px, w, h, "cam").unwrap().frame, frame);
    }
    assert_eq!(parse_task("detect").unwrap(), Some(Task::Detection));
    assert_eq!(parse_task("run").unwrap(), None);
    assert!(matches!(parse_task("dance"), Err(Error::UnknownTask(_))));
}

#[test]
fn bad_input_is_a_typed_error() {
    let e = Engine::builtin("nope").err().unwrap();
    assert!(e.to_string().contains("face, selfie"), "{e}");
    let e = Engine::from_bytes(b"not a model at all", None, "junk.onnx")
        .err()
        .unwrap();
    assert!(
        matches!(e, Error::Infer(_)) && e.to_string().contains("junk.onnx"),
        "{e}"
    );
    let b = tensorcv_zoo::find("face").unwrap();
    let e = Engine::from_bytes(b.bytes, Some("[model\nname = 1"), "face.onnx")
        .err()
        .unwrap();
    assert!(matches!(e, Error::Infer(_)), "{e}");
    let mut face = Engine::builtin("face").unwrap();
    let e = face.run(None, &[0; 10], 4, 4, "x").err().unwrap();
    assert!(
        matches!(
            e,
            Error::PixelBytes {
                want: 64,
                got: 10,
                ..
            }
        ),
        "{e}"
    );
    let e = face.run(None, &[], 0, 0, "x").err().unwrap();
    assert!(e.to_string().contains("0x0"), "{e}");
    // a detector has no segmentation to give
    let (px, w, h) = rgba("astronaut.png");
    assert!(face.run(Some(Task::Segmentation), &px, w, h, "x").is_err());
    // and the engine still works after each
    assert!(face.run(None, &px, w, h, "x").is_ok());
}
