#!/usr/bin/env python3
"""Make the OpenCV reference data that `crates/imgproc/tests/parity.rs` checks against.

Run it from anywhere:  python3 tools/make_imgproc_refs.py

It creates `tools/.venv` on first use, installs the packages pinned in `venv_bootstrap.py`
into it and re-runs itself there. Outputs go to `tests/data/imgproc/` with a `manifest.json` that lists every case;
the Rust tests read only those files and never need Python.

Inputs are real photos bundled in the scikit-image wheel (astronaut, coffee, chelsea; public
domain / CC0, see tests/data/imgproc/README.md) plus small seeded random images for edge cases.
Images are stored as PNG written by cv2.imwrite, so decoding them with tensorcv's `imread`
(OpenCV channel order) gives back exactly the array OpenCV produced.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402

OUT = ROOT / "tests" / "data" / "imgproc"

ensure_venv(__file__)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import skimage  # noqa: E402
import skimage.data  # noqa: E402
import PIL  # noqa: E402
from PIL import Image as PilImage  # noqa: E402

PNG9 = [cv2.IMWRITE_PNG_COMPRESSION, 9]
manifest = {
    "generator": "tools/make_imgproc_refs.py",
    "opencv": cv2.__version__,
    "numpy": np.__version__,
    "scikit_image": skimage.__version__,
    "pillow": PIL.__version__,
    "color": [],
    "yuv": [],
    "resize": [],
    "tensor": [],
    "pil": [],
    "blur": [],
    "yuv_encode": [],
    "warp": [],
}


def save_img(name, arr):
    """Write a u8 image (1, 3 or 4 channels, OpenCV order) losslessly."""
    assert arr.dtype == np.uint8, name
    path = OUT / f"{name}.png"
    if not cv2.imwrite(str(path), arr, PNG9):
        raise SystemExit(f"cannot write {path}")
    back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert back is not None and np.array_equal(back.reshape(arr.shape), arr), name
    return path.name


def save_npy(name, arr):
    path = OUT / f"{name}.npy"
    np.save(path, np.ascontiguousarray(arr))
    return path.name


def fnv1a64(data):
    """FNV-1a, 64 bit, as a decimal string (JSON numbers lose precision past 2^53)."""
    h = 0xCBF29CE484222325
    arr = np.frombuffer(data, dtype=np.uint8)
    # vectorised in chunks would be faster; a plain loop over 16 MB takes ~10 s, fine here
    for byte in arr.tolist():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return str(h)


def photos():
    """Real photos in OpenCV's BGR order, cropped to keep the committed data small."""
    astronaut = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)[0:320, 96:416]
    coffee = cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR)[100:340, 120:480]
    chelsea = cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR)
    return {
        "astronaut": np.ascontiguousarray(astronaut),
        "coffee": np.ascontiguousarray(coffee),
        "chelsea": np.ascontiguousarray(chelsea),
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*"):
        if old.suffix in (".png", ".npy", ".json", ".jpg") and old.name != "bench_1080p.jpg":
            old.unlink()
    rng = np.random.default_rng(20261124)
    src = {}
    for name, img in photos().items():
        src[name] = save_img(name, img)

    # Four-channel and gray sources derived from the photos, plus random edge-case images.
    coffee = photos()["coffee"]
    part = coffee[60:180, 100:260]
    alpha = np.tile(np.linspace(0, 255, part.shape[1]).astype(np.uint8), (part.shape[0], 1))
    coffee_bgra = np.dstack([part, alpha])
    src["coffee_bgra"] = save_img("coffee_bgra", coffee_bgra)
    coffee_gray = cv2.cvtColor(coffee, cv2.COLOR_BGR2GRAY)
    src["coffee_gray"] = save_img("coffee_gray", coffee_gray)
    rnd4 = rng.integers(0, 256, (29, 37, 4), dtype=np.uint8)
    src["random_bgra"] = save_img("random_bgra", rnd4)
    rnd3 = rng.integers(0, 256, (7, 3, 3), dtype=np.uint8)
    src["random_tiny"] = save_img("random_tiny", rnd3)
    one = rng.integers(0, 256, (1, 1, 3), dtype=np.uint8)
    src["random_1x1"] = save_img("random_1x1", one)
    chelsea = photos()["chelsea"]
    crop = np.ascontiguousarray(chelsea[100:130, 200:240])
    src["chelsea_crop"] = save_img("chelsea_crop", crop)

    def img(name):
        return cv2.imread(str(OUT / src[name]), cv2.IMREAD_UNCHANGED)

    # ---- color conversions (must match exactly) ----
    color_cases = [
        ("chelsea", "BGR2GRAY"), ("astronaut", "RGB2GRAY"), ("coffee_bgra", "BGRA2GRAY"),
        ("coffee_bgra", "RGBA2GRAY"), ("random_bgra", "BGRA2GRAY"), ("coffee_gray", "GRAY2BGR"),
        ("coffee_gray", "GRAY2BGRA"), ("chelsea_crop", "BGR2RGB"), ("random_bgra", "BGRA2BGR"),
        ("random_bgra", "RGBA2BGR"), ("random_bgra", "BGRA2RGBA"), ("chelsea_crop", "BGR2BGRA"),
        ("chelsea_crop", "BGR2RGBA"),
    ]
    for inp, code in color_cases:
        out = cv2.cvtColor(img(inp), getattr(cv2, "COLOR_" + code))
        name = f"color_{inp}_{code.lower()}"
        manifest["color"].append({"input": src[inp], "code": code, "output": save_img(name, out)})

    # Every 8-bit color through BGR2GRAY, as a checksum (16 MB of output is too much to commit):
    # pixels in B-major order (b, g, r) = (i >> 16, (i >> 8) & 255, i & 255).
    i = np.arange(1 << 24, dtype=np.uint32)
    allc = np.stack([(i >> 16) & 255, (i >> 8) & 255, i & 255], axis=-1).astype(np.uint8)
    gray_all = cv2.cvtColor(allc.reshape(4096, 4096, 3), cv2.COLOR_BGR2GRAY).reshape(-1)
    manifest["gray_all_colors_fnv1a64"] = fnv1a64(gray_all.tobytes())

    # ---- camera YUV formats (<= 1 from OpenCV) ----
    def yuv_buffers(bgr):
        h, w = bgr.shape[:2]
        i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).reshape(-1)
        y = i420[: w * h].reshape(h, w)
        u = i420[w * h: w * h + w * h // 4].reshape(h // 2, w // 2)
        v = i420[w * h + w * h // 4:].reshape(h // 2, w // 2)
        nv12 = np.concatenate([y.reshape(-1), np.dstack([u, v]).reshape(-1)])
        nv21 = np.concatenate([y.reshape(-1), np.dstack([v, u]).reshape(-1)])
        u422 = np.repeat(u, 2, axis=0)  # 4:2:2 chroma from 4:2:0 by line doubling
        v422 = np.repeat(v, 2, axis=0)
        yuyv = np.dstack([y[:, 0::2], u422, y[:, 1::2], v422]).reshape(-1)
        uyvy = np.dstack([u422, y[:, 0::2], v422, y[:, 1::2]]).reshape(-1)
        return {"I420": i420, "NV12": nv12, "NV21": nv21, "YUYV": yuyv, "UYVY": uyvy}

    yuv_sources = {
        "astronaut": cv2.resize(photos()["astronaut"], (128, 96), interpolation=cv2.INTER_AREA),
        "random": rng.integers(0, 256, (24, 34, 3), dtype=np.uint8),
    }
    for sname, bgr in yuv_sources.items():
        h, w = bgr.shape[:2]
        bufs = yuv_buffers(bgr)
        if sname == "random":  # stress clipping with arbitrary (not camera-like) YUV values
            bufs = {k: rng.integers(0, 256, v.shape, dtype=np.uint8) for k, v in bufs.items()}
        for fmt, buf in bufs.items():
            if fmt in ("YUYV", "UYVY"):
                shaped = buf.reshape(h, w, 2)
            else:
                shaped = buf.reshape(h * 3 // 2, w)
            inp = save_npy(f"yuv_{sname}_{fmt.lower()}", buf)
            for order in ("BGR", "RGB"):
                out = cv2.cvtColor(shaped, getattr(cv2, f"COLOR_YUV2{order}_{fmt}"))
                name = f"yuv_{sname}_{fmt.lower()}_to_{order.lower()}"
                manifest["yuv"].append({
                    "input": inp, "format": fmt, "width": w, "height": h, "order": order,
                    "output": save_img(name, out),
                })

    # ---- BGR -> I420 (what a Y4M writer stores; must match exactly) ----
    for sname, bgr in [("astronaut", yuv_sources["astronaut"]),
                       ("random", rng.integers(0, 256, (24, 34, 3), dtype=np.uint8))]:
        inp = save_img(f"yuv_encode_{sname}_bgr", bgr)
        for code in ("BGR2YUV_I420", "RGB2YUV_I420"):
            out = cv2.cvtColor(bgr, getattr(cv2, "COLOR_" + code)).reshape(-1)
            manifest["yuv_encode"].append({
                "input": inp, "code": code,
                "output": save_npy(f"yuv_encode_{sname}_{code.lower()}", out),
            })

    # ---- resize (nearest/nearest-exact exact; others <= 1) ----
    interps = ["NEAREST", "NEAREST_EXACT", "LINEAR", "AREA", "CUBIC", "LANCZOS4"]
    resize_cases = [
        ("chelsea", 160, 120), ("chelsea", 97, 61), ("chelsea", 1, 1), ("chelsea", 3, 7),
        ("chelsea_crop", 173, 129), ("chelsea_crop", 80, 60), ("astronaut", 160, 160),
        ("astronaut", 80, 80), ("astronaut", 107, 64), ("coffee_gray", 150, 100),
        ("coffee_gray", 4000, 10), ("coffee_gray", 10, 4000), ("random_bgra", 64, 50),
        ("random_bgra", 20, 13), ("random_tiny", 13, 11), ("random_tiny", 1, 1),
        ("random_1x1", 5, 3), ("coffee", 224, 224),
    ]
    for inp, w, h in resize_cases:
        # the model-input size on a larger photo, for the two modes people use most
        for interp in (["LINEAR", "AREA"] if (w, h) == (224, 224) else interps):
            out = cv2.resize(img(inp), (w, h), interpolation=getattr(cv2, "INTER_" + interp))
            if out.ndim == 2 and img(inp).ndim == 3:
                out = out[:, :, None]
            name = f"resize_{inp}_{w}x{h}_{interp.lower()}"
            manifest["resize"].append({
                "input": src[inp], "width": w, "height": h, "interp": interp,
                "output": save_img(name, out),
            })

    # ---- PIL's antialiased resize (what Keras `load_img(target_size=...)` uses) ----
    pil_cases = [("chelsea", 97, 61), ("chelsea_crop", 173, 129),
                 ("coffee_gray", 150, 100), ("coffee_gray", 31, 217)]
    for inp, w, h in pil_cases:
        arr = img(inp)
        pil = PilImage.fromarray(arr if arr.ndim == 2 else cv2.cvtColor(arr, cv2.COLOR_BGR2RGB))
        for fname in ["NEAREST", "BOX", "BILINEAR", "HAMMING", "BICUBIC", "LANCZOS"]:
            out = np.asarray(pil.resize((w, h), getattr(PilImage.Resampling, fname)))
            if out.ndim == 3:
                out = cv2.cvtColor(out, cv2.COLOR_RGB2BGR)
            name = f"pil_{inp}_{w}x{h}_{fname.lower()}"
            manifest["pil"].append({"input": src[inp], "width": w, "height": h, "filter": fname,
                                    "output": save_img(name, np.ascontiguousarray(out))})

    # ---- Gaussian blur (8-bit: OpenCV's bit-exact fixed point; must match exactly) ----
    borders = {"REFLECT_101": cv2.BORDER_REFLECT_101, "REPLICATE": cv2.BORDER_REPLICATE,
               "REFLECT": cv2.BORDER_REFLECT, "CONSTANT": cv2.BORDER_CONSTANT}
    blur_cases = [
        # (input, (kw, kh), (sigma_x, sigma_y), border)
        ("astronaut", (55, 55), (0, 0), "REFLECT_101"),  # a background-blur effect
        ("astronaut", (0, 0), (3.0, 0), "REFLECT_101"),
        ("chelsea_crop", (5, 5), (0, 0), "REFLECT_101"),
        ("chelsea_crop", (15, 7), (2.5, 1.2), "REPLICATE"),
        ("coffee_gray", (9, 9), (0, 0), "REFLECT"),
        ("coffee_gray", (3, 21), (0.6, 0), "REFLECT_101"),
        ("coffee_bgra", (7, 7), (1.5, 0), "CONSTANT"),
        ("random_bgra", (11, 11), (0, 0), "REFLECT_101"),
        ("random_tiny", (9, 9), (0, 0), "REFLECT_101"),  # kernel wider than the image
        ("random_tiny", (9, 9), (0, 0), "REFLECT"),
        ("random_tiny", (13, 5), (4.0, 0.9), "REPLICATE"),
        ("random_tiny", (9, 9), (0, 0), "CONSTANT"),
        ("random_1x1", (5, 5), (0, 0), "REFLECT_101"),
    ]
    for inp, (kw, kh), (sx, sy), border in blur_cases:
        arr = img(inp)
        out = cv2.GaussianBlur(arr, (kw, kh), sigmaX=sx, sigmaY=sy, borderType=borders[border])
        if out.ndim == 2 and arr.ndim == 3:
            out = out[:, :, None]
        name = f"blur_{inp}_{kw}x{kh}_{sx}_{sy}_{border.lower()}"
        manifest["blur"].append({
            "input": src[inp], "ksize": [kw, kh], "sigma": [sx, sy], "border": border,
            "output": save_img(name, out),
        })

    # ---- affine warps (8-bit: OpenCV's fixed point; must match exactly) ----
    # rotated, scaled and shifted crops as a landmark pipeline makes them, a letterbox-like
    # scale, a flip, a shear, an inverse map, and crops that run past the image on every side
    def rot_crop(cx, cy, size, angle, out):
        m = cv2.getRotationMatrix2D((cx, cy), angle, out / size)
        m[0, 2] += out / 2 - cx
        m[1, 2] += out / 2 - cy
        return m
    warp_cases = [
        # (input, matrix, (out_w, out_h), interpolation, border, fill, inverse)
        ("astronaut", rot_crop(250.3, 180.7, 200.0, 31.5, 224), (224, 224), "LINEAR", "CONSTANT", [0, 0, 0], False),
        ("astronaut", rot_crop(60.0, 40.0, 180.0, -100.25, 256), (256, 256), "LINEAR", "REPLICATE", [0, 0, 0], False),
        ("chelsea", rot_crop(300.5, 200.25, 500.0, 179.0, 192), (192, 192), "LINEAR", "CONSTANT", [10, 20, 30], False),
        ("chelsea", np.array([[0.4, 0.0, 0.0], [0.0, 0.4, 16.0]]), (128, 128), "LINEAR", "CONSTANT", [0, 0, 0], False),
        ("coffee", np.array([[-1.0, 0.0, 399.0], [0.0, 1.0, 0.0]]), (400, 300), "LINEAR", "REFLECT_101", [0, 0, 0], False),
        ("coffee_gray", np.array([[1.1, 0.3, -20.0], [-0.2, 0.9, 15.5]]), (160, 120), "LINEAR", "REFLECT", [0], False),
        ("coffee_bgra", rot_crop(100.0, 80.0, 120.0, 45.0, 96), (96, 96), "NEAREST", "CONSTANT", [1, 2, 3, 4], False),
        ("chelsea_crop", np.array([[0.7, -0.2, 5.3], [0.25, 0.8, -3.1]]), (90, 70), "LINEAR", "REPLICATE", [0, 0, 0], True),
        ("chelsea_crop", rot_crop(10.0, 10.0, 64.0, 12.0, 48), (48, 48), "NEAREST", "REPLICATE", [0, 0, 0], False),
        ("random_tiny", rot_crop(2.5, 2.0, 4.0, 70.0, 17), (17, 15), "LINEAR", "CONSTANT", [200, 100, 50], False),
        ("random_1x1", np.array([[0.3, 0.0, -1.0], [0.0, 0.3, -1.0]]), (9, 9), "LINEAR", "REPLICATE", [0, 0, 0], False),
    ]
    for i, (inp, mat, (ow, oh), interp, border, fill, inverse) in enumerate(warp_cases):
        arr = img(inp)
        flags = getattr(cv2, "INTER_" + interp) | (cv2.WARP_INVERSE_MAP if inverse else 0)
        out = cv2.warpAffine(arr, mat, (ow, oh), flags=flags, borderMode=borders[border],
                             borderValue=tuple(float(v) for v in fill) + (0.0,) * (4 - len(fill)))
        if out.ndim == 2 and arr.ndim == 3:
            out = out[:, :, None]
        name = f"warp_{i}_{inp}_{interp.lower()}_{border.lower()}"
        manifest["warp"].append({
            "input": src[inp], "matrix": [float(v) for v in np.asarray(mat).reshape(-1)],
            "size": [ow, oh], "interpolation": interp, "border": border, "fill": fill,
            "inverse": inverse, "output": save_img(name, out),
        })

    # ---- tensors: the Python glue our users write, in float32 (<= 1e-6) ----
    chel = img("chelsea")
    astro = img("astronaut")

    def glue(bgr, size, interp, order, norm, layout, gray=False):
        x = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if gray else (
            cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if order == "RGB" else bgr)
        x = cv2.resize(x, size, interpolation=getattr(cv2, "INTER_" + interp))
        if x.ndim == 2:
            x = x[:, :, None]
        x = x.astype(np.float32)
        if norm == "unit":
            x = x / 255.0
        elif norm == "symmetric":
            x = x / 127.5 - 1.0
        elif norm == "imagenet":
            x = (x / 255.0 - np.array([0.485, 0.456, 0.406], np.float32)) / np.array(
                [0.229, 0.224, 0.225], np.float32)
        elif norm == "caffe":
            x = x - np.array([103.939, 116.779, 123.68], np.float32)
        elif norm == "raw":
            pass
        if layout == "NCHW":
            x = x.transpose(2, 0, 1)
        return x.astype(np.float32)

    tensor_cases = [
        dict(name="unit_nhwc", srcs=["chelsea"], size=(64, 64), interp="LINEAR", order="RGB",
             norm="unit", layout="NHWC"),
        dict(name="symmetric_nhwc", srcs=["chelsea"], size=(48, 40), interp="AREA", order="RGB",
             norm="symmetric", layout="NHWC"),
        dict(name="imagenet_nchw", srcs=["chelsea"], size=(56, 56), interp="CUBIC", order="RGB",
             norm="imagenet", layout="NCHW"),
        dict(name="caffe_bgr_nhwc", srcs=["astronaut"], size=(40, 40), interp="LINEAR",
             order="BGR", norm="caffe", layout="NHWC"),
        dict(name="gray_unit_nhwc", srcs=["astronaut"], size=(64, 64), interp="AREA",
             order="GRAY", norm="unit", layout="NHWC", gray=True),
        dict(name="raw_batch_nchw", srcs=["chelsea", "astronaut"], size=(32, 24),
             interp="LINEAR", order="RGB", norm="raw", layout="NCHW"),
    ]
    for case in tensor_cases:
        imgs = {"chelsea": chel, "astronaut": astro}
        batch = np.stack([
            glue(imgs[s], case["size"], case["interp"], case["order"], case["norm"],
                 case["layout"], case.get("gray", False))
            for s in case["srcs"]
        ])
        entry = {k: v for k, v in case.items() if k not in ("srcs", "size", "gray")}
        entry.update(inputs=[src[s] for s in case["srcs"]], width=case["size"][0],
                     height=case["size"][1], output=save_npy("tensor_" + case["name"], batch))
        manifest["tensor"].append(entry)

    # ---- decoding: JPEG as cv2.imread sees it, and EXIF orientation (tags 1..8) ----
    manifest["jpeg"] = []
    for name, quality, sampling in [("chelsea_q90_420", 90, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420),
                                    ("chelsea_q95_444", 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444)]:
        ok, enc = cv2.imencode(".jpg", chelsea, [cv2.IMWRITE_JPEG_QUALITY, quality,
                                                 cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling])
        assert ok
        (OUT / f"{name}.jpg").write_bytes(enc.tobytes())
        dec = cv2.imread(str(OUT / f"{name}.jpg"), cv2.IMREAD_COLOR)
        manifest["jpeg"].append({"input": f"{name}.jpg", "output": save_img(f"{name}_cv2", dec)})

    # A small asymmetric picture (so every rotation and mirror is distinguishable), JPEG 4:4:4 at
    # quality 100, with an EXIF APP1 segment carrying each orientation value.
    pic = np.zeros((8, 16, 3), np.uint8)
    pic[:, :8] = (0, 0, 255)      # left half red (BGR)
    pic[:4, 8:] = (255, 0, 0)     # top right blue
    pic[4:, 8:] = (0, 255, 0)     # bottom right green
    ok, enc = cv2.imencode(".jpg", pic, [cv2.IMWRITE_JPEG_QUALITY, 100,
                                         cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                                         cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
    base = enc.tobytes()
    manifest["exif"] = []
    for orientation in range(1, 9):
        # TIFF header (little endian), one IFD entry: tag 0x0112 SHORT count 1 value
        tiff = (b"II*\x00" + (8).to_bytes(4, "little") + (1).to_bytes(2, "little")
                + (0x0112).to_bytes(2, "little") + (3).to_bytes(2, "little")
                + (1).to_bytes(4, "little") + orientation.to_bytes(2, "little") + b"\x00\x00"
                + (0).to_bytes(4, "little"))
        payload = b"Exif\x00\x00" + tiff
        app1 = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
        jpg = base[:2] + app1 + base[2:]
        name = f"exif_orientation_{orientation}"
        (OUT / f"{name}.jpg").write_bytes(jpg)
        dec = cv2.imread(str(OUT / f"{name}.jpg"), cv2.IMREAD_COLOR)
        raw = cv2.imread(str(OUT / f"{name}.jpg"), cv2.IMREAD_UNCHANGED)
        manifest["exif"].append({"input": f"{name}.jpg", "orientation": orientation,
                                 "output": save_img(name + "_cv2", dec),
                                 "unchanged": save_img(name + "_cv2_unchanged", raw)})

    # ---- a 1920x1080 JPEG for the benchmarks (tools/bench_imgproc_opencv.py and benches/) ----
    big = cv2.resize(cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR), (1920, 1080),
                     interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(OUT / "bench_1080p.jpg"), big, [cv2.IMWRITE_JPEG_QUALITY, 85])

    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total / 1e6:.2f} MB, into {OUT}")


if __name__ == "__main__":
    main()
