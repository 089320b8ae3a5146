#!/usr/bin/env python3
"""Offline evaluation of sync-model variants on the validation sets, for the ablation.

    python tools/research/offline_eval.py model.pt [--asd] [--out x.json]

Every variant is scored the same way, from cached features (no decoding): each clip's
steps are scored once against its own audio over native shifts of +-27 steps, and a
copy shifted by k steps (k = offset / 40 ms, offsets -480..+480 ms) is read off the
same scores (shift s of the copy is native shift s - k; pairs reaching past the
copy's audio are dropped, as check drops them). Windows as check cuts them (3 s,
hop 1 s, the first ones shorter), 15-step windows as SyncNet-style probes; a
window's curve is the mean over its steps of the scores centred per step (as
check's); the clip
curve is the mean of the window curves weighted by their steps. The figures track
tools/evaluate.py closely (the model card compares both on the winner) and cost
seconds instead of minutes per variant.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from avsync.estimate.offset import Curve, peak  # noqa: E402
from avsync.model import data  # noqa: E402
from avsync.model.augment import normalise_mel  # noqa: E402
from avsync.model.spec import SPEC  # noqa: E402
from tools.eval_sets import suite  # noqa: E402

NATIVE = 27  # native shifts scored: +-(15 + the largest applied shift, 12 steps)
OFFSETS_MS = [-480, -320, -200, -120, -80, -40, 0, 40, 80, 120, 200, 320, 480]
WINDOW, HOP, PROBE, MIN_STEPS = 75, 25, 15, 10
BLOCKS = (-16, 0, 16)  # centres of the shift blocks that cover +-NATIVE
PAD = max(BLOCKS) + SPEC.max_shift + SPEC.margin  # audio steps every block reads


def own_model_scores(model, clip: data.GridClip) -> np.ndarray:
    """(n, 2 NATIVE + 1) scores of video step t against native shift j (audio t - j)."""
    from avsync.model.train import model_inputs

    n, k, m, per = clip.steps, SPEC.max_shift, SPEC.margin, SPEC.mels_per_step
    firsts = list(range(0, max(1, n - PROBE + 1), PROBE))
    if n > PROBE and firsts[-1] + PROBE < n:
        firsts.append(n - PROBE)
    mouths, mels, lips, where = [], [], [], []
    for first in firsts:
        pick = np.clip(np.arange(first, first + PROBE), 0, n - 1)
        for c in BLOCKS:
            lo = (first - c - k - m + clip.pad) * per
            mouths.append(clip.mouth[pick])
            mels.append(clip.mel[lo : lo + (PROBE + 2 * k + 2 * m) * per])
            lips.append(clip.pass_lips(pick))  # as inference fills a pass
            where.append((first, c))
    with torch.no_grad():
        mouth, lip = model_inputs(model, torch.from_numpy(np.stack(mouths)).float(),
                                  torch.from_numpy(np.stack(lips)))
        mel = normalise_mel(torch.from_numpy(np.stack(mels)))
        out = []
        for i in range(0, len(mel), 64):
            part = slice(i, i + 64)
            out.append(model(None if mouth is None else mouth[part], mel[part],
                             None if lip is None else lip[part]))
        out = torch.cat(out).numpy()
    native = np.full((n, 2 * NATIVE + 1), np.nan, np.float32)
    for (first, c), scores in zip(where, out, strict=True):
        for t in range(PROBE):
            if first + t >= n:
                break
            for i in range(SPEC.shifts):
                j = c + i - k
                if abs(j) <= NATIVE:
                    native[first + t, j + NATIVE] = scores[i, t]
    return native


def _centre(x: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """As avsync.model.infer.centre_steps, steps on axis 0."""
    from avsync.model.infer import centre_steps

    centred, _ = centre_steps(x.T, ok.T)
    ok = ok & (ok.sum(axis=1, keepdims=True) >= 3)
    return centred.T, ok


def _curve(centred: np.ndarray, ok: np.ndarray, steps: slice) -> tuple[np.ndarray, int] | None:
    c, okk = centred[steps], ok[steps]
    count = okk.sum(axis=0)
    used = int(okk.any(axis=1).sum())
    if count.max() < MIN_STEPS or used == 0:
        return None
    return np.where(count >= MIN_STEPS, c.sum(axis=0) / used, np.nan), used


def evaluate_clip(native: np.ndarray, clip: data.GridClip, offsets_ms=OFFSETS_MS) -> list[dict]:
    n = clip.steps
    k0 = SPEC.max_shift
    shifts = np.arange(-k0, k0 + 1)
    n_audio = int(clip.audio_ok.sum())
    a0 = int(np.argmax(clip.audio_ok)) - clip.pad  # first audio step, grid coordinates
    speech = clip.speech[clip.pad : clip.pad + n]
    rows = []
    for off in offsets_ms:
        k = int(round(off / 40))
        j = shifts[None, :] - k  # native shift of each candidate
        t = np.arange(n)[:, None]
        scores = native[t, j + NATIVE]
        u = t - shifts[None, :]  # the copy's audio step each pair reads
        ok = (u - SPEC.margin >= a0) & (u + SPEC.margin < a0 + n_audio) & np.isfinite(scores)
        ok &= clip.video_ok[:, None]
        logp, ok = _centre(np.nan_to_num(scores), ok)
        offsets_s = shifts * SPEC.step_s
        windows, curves, weights = [], [], []
        for end in list(range(HOP, n, HOP)) + [n]:
            sl = slice(max(0, end - WINDOW), end)
            if clip.video_ok[sl].mean() < 0.6 or (speech[sl] > 0.5).mean() < 0.25:
                continue
            got = _curve(logp, ok, sl)
            if got is None:
                continue
            curve, used = got
            best = peak(Curve(offsets_s, curve))[0] * 1e3
            windows.append(best)
            curves.append(curve)
            weights.append(used)
        probes = []
        for first in range(0, n - PROBE + 1, PROBE):
            sl = slice(first, first + PROBE)
            if clip.video_ok[sl].mean() < 0.6 or (speech[sl] > 0.5).mean() < 0.25:
                continue
            got = _curve(logp, ok, sl)
            if got is not None:
                probes.append(peak(Curve(offsets_s, got[0]))[0] * 1e3)
        estimate = None
        if curves:
            c = np.array(curves)
            w = np.array(weights, float)[:, None] * np.isfinite(c)
            with np.errstate(invalid="ignore"):
                mean = np.where(w.sum(0) > 0, (np.nan_to_num(c) * w).sum(0) / w.sum(0), np.nan)
            estimate = peak(Curve(offsets_s, mean))[0] * 1e3
        rows.append({"offset_ms": off, "clip_estimate_ms": estimate, "windows_ms": windows,
                     "probes_ms": probes})
    return rows


def summarise(rows: list[dict]) -> dict:
    def within(est, off):
        return est is not None and abs(est - off) <= 40 + 1e-6

    err = [r["clip_estimate_ms"] - r["offset_ms"] for r in rows
           if r["clip_estimate_ms"] is not None]
    zero = {r["clip"]: r["clip_estimate_ms"] for r in rows if r["offset_ms"] == 0}
    moved = [abs(r["clip_estimate_ms"] - zero[r["clip"]] - r["offset_ms"]) <= 40 for r in rows
             if r["offset_ms"] != 0 and r["clip_estimate_ms"] is not None
             and zero.get(r["clip"]) is not None]
    win = [within(w, r["offset_ms"]) for r in rows for w in r["windows_ms"]]
    probe = [within(w, r["offset_ms"]) for r in rows for w in r["probes_ms"]]
    # against the clip's own answer (its median estimate - shift): window noise alone
    probe_own = [within(w, r["offset_ms"] + r["bias_ms"]) for r in rows
                 if r["bias_ms"] is not None for w in r["probes_ms"]]
    win_own = [within(w, r["offset_ms"] + r["bias_ms"]) for r in rows
               if r["bias_ms"] is not None for w in r["windows_ms"]]
    return {"cases": len(rows),
            "clip_acc": float(np.mean([within(r["clip_estimate_ms"], r["offset_ms"])
                                       for r in rows])),
            "median_abs_ms": float(np.median(np.abs(err))) if err else None,
            "mean_signed_ms": float(np.mean(err)) if err else None,
            "coverage": len(err) / max(1, len(rows)),
            "shift_consistency": float(np.mean(moved)) if moved else None,
            "window_3s": float(np.mean(win)) if win else None,
            "window_15": float(np.mean(probe)) if probe else None,
            "window_3s_own": float(np.mean(win_own)) if win_own else None,
            "window_15_own": float(np.mean(probe_own)) if probe_own else None}


def run(native_of, sets: list, pad: int = PAD, mesh_every: int = SPEC.landmark_every) -> dict:
    rows = []
    for c in sets:
        clip = data.to_grid(data.cached(c.path, data.default_cache_dir(),
                                        landmark_every=mesh_every), c.set, pad=pad)
        native = native_of(clip, c)
        for r in evaluate_clip(native, clip):
            rows.append({**r, "clip": c.clip, "set": c.set, "trusted": c.trusted})
    per_clip: dict[str, list[float]] = {}
    for r in rows:
        if r["clip_estimate_ms"] is not None:
            per_clip.setdefault(f"{r['set']}: {r['clip']}", []).append(
                r["clip_estimate_ms"] - r["offset_ms"])
    bias = {k: round(float(np.median(v)), 1) for k, v in per_clip.items()}
    for r in rows:
        r["bias_ms"] = bias.get(f"{r['set']}: {r['clip']}")
    out = {"all trusted": summarise([r for r in rows if r["trusted"]])}
    if not all(r["trusted"] for r in rows):
        out["all in doubt"] = summarise([r for r in rows if not r["trusted"]])
    for name in dict.fromkeys(r["set"] for r in rows):
        out[name] = summarise([r for r in rows if r["set"] == name])
    out["per_clip_bias_ms"] = bias
    return {"summary": out, "rows": rows}


def print_summary(summary: dict) -> None:
    keys = ["clip_acc", "median_abs_ms", "mean_signed_ms", "coverage", "shift_consistency",
            "window_3s", "window_15", "window_3s_own", "window_15_own", "cases"]
    groups = [g for g in summary if g != "per_clip_bias_ms"]
    print(f"{'':22}" + "".join(f"{g[:16]:>17}" for g in groups))
    for key in keys:
        cells = []
        for g in groups:
            v = summary[g].get(key)
            cells.append("n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v))
        print(f"{key:22}" + "".join(f"{c:>17}" for c in cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--asd", action="store_true", help="the ASD-encoder variant")
    parser.add_argument("--suite", default="validation")
    parser.add_argument("--out")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mesh-every", type=int, default=SPEC.landmark_every,
                        help="the front end's face-mesh cadence the model was trained on")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    if args.asd:
        from tools.research.asd_head import load_model, native_scores

        model = load_model(state)
        native_of = lambda clip, c: native_scores(model, clip, c.path)  # noqa: E731
    else:
        from avsync.model.export import load_checkpoint

        model = load_checkpoint(Path(args.checkpoint))
        native_of = lambda clip, c: own_model_scores(model, clip)  # noqa: E731
    result = run(native_of, suite(args.suite), mesh_every=args.mesh_every)
    print_summary(result["summary"])
    for k, v in result["summary"]["per_clip_bias_ms"].items():
        print(f"  {v:+7.1f}  {k}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
