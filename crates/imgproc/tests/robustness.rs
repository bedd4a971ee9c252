//! Hostile and broken input: decoding must return an error (or an image), never panic, hang or
//! allocate what a header merely claims.

mod common;

use proptest::prelude::*;
use tensorcv_imgproc::io::{imdecode, imencode, DecodeOptions, EncodeFormat};
use tensorcv_imgproc::{Error, Image, PixelFormat};

fn samples() -> Vec<(&'static str, Vec<u8>)> {
    let data: Vec<u8> = (0..(23 * 17 * 3)).map(|i| (i * 37 % 251) as u8).collect();
    let img = Image::from_vec(data, 23, 17, PixelFormat::Bgr8).unwrap();
    let jpeg = std::fs::read(common::data_dir().join("chelsea_q90_420.jpg")).unwrap();
    vec![
        ("png", imencode(&img.view(), EncodeFormat::Png).unwrap()),
        (
            "jpeg-small",
            imencode(&img.view(), EncodeFormat::Jpeg(90)).unwrap(),
        ),
        ("jpeg-photo", jpeg),
        ("bmp", imencode(&img.view(), EncodeFormat::Bmp).unwrap()),
        ("pnm", imencode(&img.view(), EncodeFormat::Pnm).unwrap()),
    ]
}

#[test]
fn truncated_files_are_errors() {
    for (name, bytes) in samples() {
        for cut in [
            0,
            1,
            2,
            4,
            11,
            40,
            bytes.len() / 3,
            bytes.len() / 2,
            bytes.len() - 200,
        ] {
            if cut >= bytes.len() {
                continue;
            }
            let r = imdecode(&bytes[..cut], &DecodeOptions::default());
            assert!(r.is_err(), "{name} cut at {cut} of {} decoded", bytes.len());
        }
    }
    // what cv2.imread does with a truncated JPEG, on request
    let (_, jpeg) = samples().swap_remove(2);
    let lenient = DecodeOptions {
        allow_truncated: true,
        ..DecodeOptions::default()
    };
    let partial = imdecode(&jpeg[..jpeg.len() * 2 / 3], &lenient).unwrap();
    assert_eq!((partial.width(), partial.height()), (451, 300));
    let err = imdecode(&jpeg[..jpeg.len() * 2 / 3], &DecodeOptions::default()).unwrap_err();
    assert!(err.to_string().contains("truncated JPEG"), "{err}");
}

/// A PNG that claims `w`×`h` pixels, with a token of pixel data behind it.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    fn crc(data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in data {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for chunk in [ihdr, b"IDAT\x78\x9c\x03\x00".to_vec(), b"IEND".to_vec()] {
        out.extend_from_slice(&(chunk.len() as u32 - 4).to_be_bytes());
        out.extend_from_slice(&chunk);
        out.extend_from_slice(&crc(&chunk).to_be_bytes());
    }
    out
}

#[test]
fn decompression_bombs_are_refused_from_the_header() {
    let bomb = png_claiming(100_000, 100_000);
    match imdecode(&bomb, &DecodeOptions::default()) {
        Err(Error::LimitExceeded { width, height, .. }) => {
            assert_eq!((width, height), (100_000, 100_000))
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    // within the side limits but over the pixel budget
    let wide = png_claiming(16_000, 16_000);
    let err = imdecode(&wide, &DecodeOptions::default()).unwrap_err();
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
    assert!(err.to_string().contains("16000x16000"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn corrupted_files_never_panic(
        which in 0usize..5,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let (_, mut bytes) = samples().swap_remove(which);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        // Ok or Err are both fine; a panic fails the test.
        let _ = imdecode(&bytes, &DecodeOptions::default());
    }
}
