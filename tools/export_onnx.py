#!/usr/bin/env python3
"""Export a trained sync model (tools/train.py) to the ONNX file avsync runs.

    python tools/export_onnx.py model.pt avsync/model/weights/sync.onnx

The graph has a fixed shape (one pass: spec.frames video steps, all shifts): the
GRU and attention reshapes bake shapes in, and onnxruntime is fast at batch 1. The
export is checked against torch on random inputs before it is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsync.model.export import export  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    args = parser.parse_args()
    diff = export(Path(args.checkpoint), Path(args.out))
    print(f"wrote {args.out}; largest |torch - onnxruntime| on random inputs: {diff:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
