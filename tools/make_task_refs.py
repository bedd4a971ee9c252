#!/usr/bin/env python3
"""Reference results for `crates/tasks`, made by MediaPipe itself (tools/.mp-venv,
mediapipe 0.10.14).

1. Its face detection solution (`face_detection_short_range.tflite` through MediaPipe's own
   graph: ImageToTensor letterbox, SsdAnchorsCalculator, TensorsToDetectionsCalculator,
   weighted NonMaxSuppression, letterbox removal) on the test photos. Writes
   `tests/data/tasks/face_detections.json`: per photo, every face as a box [x1, y1, x2, y2]
   and six keypoints [x, y] in source pixels, and its score.
2. MediaPipe's calculators run alone in small graphs (`CalculatorGraph` from Python):
   `SsdAnchorsCalculator` with the anchor settings of MediaPipe's own detectors (and an
   SSD-MobileNet one with several aspect ratios), and `NonMaxSuppressionCalculator` (fed through
   `MergeDetectionsToVectorCalculator`) on seeded random clusters of boxes with keypoints, hard
   and weighted. Writes `tests/data/tasks/mediapipe_calculators.json`.

    python3 tools/make_task_refs.py
"""
import json
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402

ensure_venv(__file__, ".mp-venv")

import cv2  # noqa: E402  (opencv-contrib-python, a mediapipe dependency)
import mediapipe as mp  # noqa: E402
import numpy as np  # noqa: E402
from mediapipe.framework.formats import detection_pb2, location_data_pb2  # noqa: E402
from mediapipe.python import packet_creator, packet_getter  # noqa: E402
from mediapipe.python._framework_bindings import calculator_graph  # noqa: E402

warnings.filterwarnings("ignore", category=UserWarning)  # protobuf's GetPrototype notice

PHOTOS = ["astronaut", "coffee", "chelsea"]
OUT = ROOT / "tests" / "data" / "tasks"

# SsdAnchorsCalculatorOptions of MediaPipe's graphs (mediapipe/modules/*/…pbtxt), by the name
# the Rust test uses; each value is the options text.
ANCHOR_CONFIGS = {
    # face_detection_short_range.pbtxt
    "face_short_range": """num_layers: 4 min_scale: 0.1484375 max_scale: 0.75
        input_size_height: 128 input_size_width: 128 anchor_offset_x: 0.5 anchor_offset_y: 0.5
        strides: 8 strides: 16 strides: 16 strides: 16 aspect_ratios: 1.0
        fixed_anchor_size: true""",
    # face_detection_full_range.pbtxt
    "face_full_range": """num_layers: 1 min_scale: 0.1484375 max_scale: 0.75
        input_size_height: 192 input_size_width: 192 anchor_offset_x: 0.5 anchor_offset_y: 0.5
        strides: 4 aspect_ratios: 1.0 fixed_anchor_size: true
        interpolated_scale_aspect_ratio: 0.0""",
    # pose_detection.pbtxt
    "pose": """num_layers: 5 min_scale: 0.1484375 max_scale: 0.75
        input_size_height: 224 input_size_width: 224 anchor_offset_x: 0.5 anchor_offset_y: 0.5
        strides: 8 strides: 16 strides: 32 strides: 32 strides: 32 aspect_ratios: 1.0
        fixed_anchor_size: true""",
    # palm_detection_cpu.pbtxt (0.10: 192x192)
    "palm": """num_layers: 4 min_scale: 0.1484375 max_scale: 0.75
        input_size_width: 192 input_size_height: 192 anchor_offset_x: 0.5 anchor_offset_y: 0.5
        strides: 8 strides: 16 strides: 16 strides: 16 aspect_ratios: 1.0
        fixed_anchor_size: true""",
    # object_detection (SSD MobileNet v2, 320x320 in MediaPipe's object detection example):
    # several aspect ratios, sized anchors, the reduced lowest layer
    "ssd_mobilenet": """num_layers: 6 min_scale: 0.2 max_scale: 0.95
        input_size_height: 320 input_size_width: 320 anchor_offset_x: 0.5 anchor_offset_y: 0.5
        strides: 16 strides: 32 strides: 64 strides: 128 strides: 256 strides: 512
        aspect_ratios: 1.0 aspect_ratios: 2.0 aspect_ratios: 0.5 aspect_ratios: 3.0
        aspect_ratios: 0.3333 reduce_boxes_in_lowest_layer: true""",
    # non-square input with explicit feature maps
    "feature_maps_wide": """num_layers: 2 min_scale: 0.3 max_scale: 0.8
        input_size_height: 96 input_size_width: 160 anchor_offset_x: 0.5 anchor_offset_y: 0.5
        feature_map_height: 6 feature_map_height: 3 feature_map_width: 10
        feature_map_width: 5 strides: 16 strides: 32 aspect_ratios: 1.0 aspect_ratios: 2.0
        interpolated_scale_aspect_ratio: 1.0""",
}


def options_dict(text):
    """The options text as a dict (repeated fields as lists), for the Rust test to map."""
    out = {}
    tokens = text.replace(":", " : ").split()
    for i in range(0, len(tokens), 3):
        key, value = tokens[i], tokens[i + 2]
        v = {"true": True, "false": False}.get(value)
        if v is None:
            v = float(value) if "." in value else int(value)
        if key in ("strides", "aspect_ratios", "feature_map_height", "feature_map_width"):
            out.setdefault(key, []).append(v)
        else:
            out[key] = v
    return out


def run_anchors(options):
    cfg = f"""
output_side_packet: "anchors"
node {{
  calculator: "SsdAnchorsCalculator"
  output_side_packet: "anchors"
  options: {{ [mediapipe.SsdAnchorsCalculatorOptions.ext] {{ {options} }} }}
}}"""
    g = calculator_graph.CalculatorGraph(graph_config=cfg)
    g.start_run()
    g.wait_until_done()
    anchors = packet_getter.get_proto_list(g.get_output_side_packet("anchors"))
    return [[a.x_center, a.y_center, a.w, a.h] for a in anchors]


def random_detections(rng, n_clusters, per_cluster, keypoints):
    """Clusters of jittered boxes (relative coordinates), scores in 0.3..1, with keypoints."""
    dets = []
    for _ in range(n_clusters):
        cx, cy = rng.uniform(0.15, 0.85, 2)
        w, h = rng.uniform(0.05, 0.3, 2)
        for _ in range(per_cluster):
            jx, jy = rng.normal(0, 0.02, 2)
            sw, sh = rng.uniform(0.8, 1.25, 2)
            dets.append({
                "box": [float(cx + jx - w * sw / 2), float(cy + jy - h * sh / 2),
                        float(cx + jx + w * sw / 2), float(cy + jy + h * sh / 2)],
                "score": float(rng.uniform(0.3, 1.0)),
                "keypoints": [[float(cx + jx + rng.normal(0, 0.01)),
                               float(cy + jy + rng.normal(0, 0.01))] for _ in range(keypoints)],
            })
    return dets


def to_proto(d):
    p = detection_pb2.Detection()
    p.score.append(d["score"])
    p.label_id.append(0)
    loc = p.location_data
    loc.format = location_data_pb2.LocationData.RELATIVE_BOUNDING_BOX
    x1, y1, x2, y2 = d["box"]
    bb = loc.relative_bounding_box
    bb.xmin, bb.ymin, bb.width, bb.height = x1, y1, x2 - x1, y2 - y1
    for x, y in d["keypoints"]:
        k = loc.relative_keypoints.add()
        k.x, k.y = x, y
    return p


def run_nms(dets, algorithm, threshold, max_num):
    inputs = "\n".join(f'input_stream: "d{i}"' for i in range(len(dets)))
    node_in = "\n".join(f'  input_stream: "d{i}"' for i in range(len(dets)))
    cfg = f"""
{inputs}
output_stream: "out"
node {{
  calculator: "MergeDetectionsToVectorCalculator"
{node_in}
  output_stream: "all"
}}
node {{
  calculator: "NonMaxSuppressionCalculator"
  input_stream: "all"
  output_stream: "out"
  options: {{ [mediapipe.NonMaxSuppressionCalculatorOptions.ext] {{
    min_suppression_threshold: {threshold} overlap_type: INTERSECTION_OVER_UNION
    algorithm: {algorithm} max_num_detections: {max_num} }} }}
}}"""
    g = calculator_graph.CalculatorGraph(graph_config=cfg)
    out = []
    g.observe_output_stream("out", lambda s, p: out.append(packet_getter.get_proto_list(p)))
    g.start_run()
    for i, d in enumerate(dets):
        g.add_packet_to_input_stream(f"d{i}", packet_creator.create_proto(to_proto(d)).at(0))
    g.close_all_packet_sources()
    g.wait_until_done()
    result = []
    for p in out[0]:
        bb = p.location_data.relative_bounding_box
        result.append({
            "box": [bb.xmin, bb.ymin, bb.xmin + bb.width, bb.ymin + bb.height],
            "score": p.score[0],
            "keypoints": [[k.x, k.y] for k in p.location_data.relative_keypoints],
        })
    return result


def calculators():
    result = {"generator": "tools/make_task_refs.py", "mediapipe": mp.__version__,
              "anchors": {}, "nms": []}
    for name, text in ANCHOR_CONFIGS.items():
        anchors = run_anchors(text)
        result["anchors"][name] = {"options": options_dict(text), "anchors": anchors}
        print(f"anchors {name}: {len(anchors)}")
    rng = np.random.default_rng(20261126)
    for case, (clusters, per, kps) in enumerate([(3, 4, 6), (5, 3, 2), (1, 8, 0), (6, 2, 4)]):
        dets = random_detections(rng, clusters, per, kps)
        for algorithm in ("WEIGHTED", "DEFAULT"):
            for threshold, max_num in ((0.3, -1), (0.5, 3)):
                kept = run_nms(dets, algorithm, threshold, max_num)
                result["nms"].append({"input": dets, "algorithm": algorithm,
                                      "threshold": threshold, "max_num_detections": max_num,
                                      "output": kept})
                print(f"nms case {case} {algorithm} {threshold} {max_num}: "
                      f"{len(dets)} -> {len(kept)}")
    (OUT / "mediapipe_calculators.json").write_text(json.dumps(result) + "\n")


def face_detections():
    result = {"generator": "tools/make_task_refs.py", "mediapipe": mp.__version__,
              "model": "face_detection_short_range (model_selection=0)",
              "min_detection_confidence": 0.5, "photos": {}}
    with mp.solutions.face_detection.FaceDetection(model_selection=0,
                                                   min_detection_confidence=0.5) as fd:
        for name in PHOTOS:
            path = ROOT / "tests" / "data" / "imgproc" / f"{name}.png"
            rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            h, w = rgb.shape[:2]
            faces = []
            for d in fd.process(rgb).detections or []:
                r = d.location_data.relative_bounding_box
                faces.append({
                    "score": d.score[0],
                    "box": [r.xmin * w, r.ymin * h, (r.xmin + r.width) * w,
                            (r.ymin + r.height) * h],
                    "keypoints": [[k.x * w, k.y * h]
                                  for k in d.location_data.relative_keypoints],
                })
            result["photos"][f"tests/data/imgproc/{name}.png"] = faces
            print(name, json.dumps(faces))
    (OUT / "face_detections.json").write_text(json.dumps(result, indent=1) + "\n")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    face_detections()
    calculators()


if __name__ == "__main__":
    main()
