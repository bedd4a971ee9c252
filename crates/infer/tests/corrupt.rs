//! Corrupt model files give an error naming the model, never a panic or an abort. The cases
//! are the zoo's files with the bytes a mutation campaign (`tools/hostile.py`) and the fuzzers
//! (`fuzz/`) found changed; each panicked inside tract-tflite, flatbuffers or tract before
//! loading was guarded.

use std::path::PathBuf;
use tensorcv_infer::{Error, LoadOptions, Model};

fn zoo(name: &str) -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read(root.join("models").join(name)).unwrap()
}

/// `bytes` with `patches` (offset, new bytes in hex) written over them.
fn patched(mut bytes: Vec<u8>, patches: &[(usize, &str)]) -> Vec<u8> {
    for &(at, hex) in patches {
        let new: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        bytes[at..at + new.len()].copy_from_slice(&new);
    }
    bytes
}

fn load(bytes: &[u8]) -> Result<Model, Error> {
    Model::from_bytes_named(bytes, "'corrupt.tflite'", LoadOptions::default())
}

#[test]
fn tflite_files_with_bad_indices_are_refused_before_tract_reads_them() {
    let good = zoo("shapes_int8.tflite");
    assert!(load(&good).is_ok());
    // (what the change broke, the patch)
    let cases: &[(&str, &[(usize, &str)])] = &[
        ("a tensor's buffer index", &[(30732, "00")]),
        ("a tensor table offset", &[(48, "0000")]),
        ("an operator table offset", &[(52, "0000")]),
        ("an operator's input index", &[(30133, "66")]),
        ("two offsets", &[(40, "0080"), (6063, "7fffffff")]),
        // found by the mutation campaign: tract-data divided by a zero dimension
        ("a dimension", &[(30245, "80"), (30247, "0000")]),
    ];
    for (what, patch) in cases {
        match load(&patched(good.clone(), patch)) {
            Err(Error::Load {
                what: name,
                message,
            }) => {
                assert_eq!(name, "'corrupt.tflite'");
                assert!(!message.is_empty());
                println!("{what}: {message}");
            }
            Err(other) => println!("{what}: {other}"),
            Ok(_) => panic!("{what}: a corrupt file loaded"),
        }
    }
}

/// Every tenth byte of the TFLite file, and bytes spread over the ONNX file, set to values
/// that break sizes and offsets: each load ends with a model or an error.
#[test]
fn byte_changes_anywhere_give_a_model_or_an_error() {
    for (name, step) in [("shapes_int8.tflite", 97), ("shapes.onnx", 1031)] {
        let good = zoo(name);
        let (mut loaded, mut refused) = (0, 0);
        for at in (0..good.len()).step_by(step) {
            for value in [0x00u8, 0xff, 0x7f, 0x80] {
                let mut bad = good.clone();
                bad[at] = value;
                match load(&bad) {
                    Ok(_) => loaded += 1,
                    Err(e) => {
                        refused += 1;
                        assert!(!e.to_string().is_empty());
                    }
                }
            }
        }
        println!("{name}: {loaded} still load, {refused} refused");
        assert!(refused > 0);
    }
}

#[test]
fn loading_options_out_of_range_are_errors_naming_the_option() {
    let good = zoo("shapes.onnx");
    for (options, setting) in [
        (
            LoadOptions {
                threads: 0,
                ..Default::default()
            },
            "threads",
        ),
        (
            LoadOptions {
                threads: usize::MAX,
                ..Default::default()
            },
            "threads",
        ),
        (
            LoadOptions {
                batch: 1 << 40,
                ..Default::default()
            },
            "batch",
        ),
    ] {
        match Model::from_bytes(&good, options) {
            Err(Error::Invalid { setting: s, .. }) => assert_eq!(s, setting),
            other => panic!("{setting}: {other:?}"),
        }
    }
    // more threads than cores are used as the cores (no error, no slowdown)
    let cores = tensorcv_infer::available_threads();
    let many = LoadOptions {
        threads: cores * 8,
        ..Default::default()
    };
    assert!(Model::from_bytes(&good, many).is_ok());
}
