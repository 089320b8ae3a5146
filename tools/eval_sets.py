"""The named sets lip-sync accuracy is measured on, and where each clip comes from.

validation: speakers no training or tuning saw (tools/people.py), trusted to be in
  sync: GRID studio speakers s16, s25, s27 and s31 (`grid-more`), half the LRS3 TED
  test speakers (`lrs3-ted-val`), two broadcast addresses (`broadcast-val`),
  ../shared/clips/train/lrs2 (BBC) and .../vox-lrw (VoxCeleb2/LRW crops). Beside them,
  judged by shift consistency and reported apart (their own sync is in doubt): the
  originals of the dev evaluation split (`dev-eval`, repository crops) and its renders
  (`dev-eval-renders`, a generator may shift its output).
seen: the clips of the training sources that training holds out (by a hash of the
  name): mostly people the model was trained on, for the seen-vs-unseen gap.
relative: the training clips of doubtful own sync (lab stimuli, a web interview, LRS3
  re-muxes), measured at offset 0 to re-align them before they train
  (tools/train.py --own-offsets).
zero: the trusted training sources, for fitting where "in sync" lies (the classical
  scorer's articulation lead) with every source weighted equally: GRID speaker s1
  (studio) and the Arabic TV news clips.
zero-held-out: the clips of those sources that model training holds out
  (avsync.model.data.held_out), to see where a trained model's zero sits per source.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

from tools.dev_split import clips as dev_clips

SHARED = Path(__file__).resolve().parents[2] / "shared" / "clips"


@dataclass(frozen=True)
class Clip:
    path: str
    clip: str  # the name the tables show
    set: str
    kind: str  # original | generated (CATALOG.tsv)
    trusted: bool  # its own sync is trusted: counts in absolute accuracy

    def as_dict(self) -> dict:
        return asdict(self)


def _kinds(folder: Path) -> dict[str, str]:
    catalog = folder / "CATALOG.tsv"
    if not catalog.exists():
        return {}
    with catalog.open() as f:
        return {Path(r["file"]).name: r.get("kind", "original")
                for r in csv.DictReader(f, delimiter="\t")}


def folder_clips(folder: str | Path, split: str = "all", kind: str | None = None,
                 set_name: str | None = None) -> list[Clip]:
    """Media files of a folder (CATALOG.tsv order when it has one), by dev split and kind."""
    folder = Path(folder)
    kinds = _kinds(folder) or _kinds(folder.parent)
    out = []
    for path in dev_clips(folder, split):
        k = kinds.get(path.name, "original")
        if kind and k != kind:
            continue
        out.append(Clip(str(path), path.name, set_name or folder.name, k, k == "original"))
    return out


def _doubtful(clips: list[Clip]) -> list[Clip]:
    """Clips whose own sync is in doubt: shift consistency only, absolute figures apart."""
    return [Clip(c.path, c.clip, c.set, c.kind, False) for c in clips]


def suite(name: str, max_clips: int | None = None) -> list[Clip]:
    if not SHARED.is_dir():
        raise FileNotFoundError(f"{SHARED} not found: the evaluation sets live in ../shared")
    if name == "validation":
        from tools.people import validation_sets

        sets = [[Clip(str(p), p.name, set_name, "original", True) for p in paths]
                for set_name, paths in validation_sets().items()]
        sets += [folder_clips(SHARED / "train" / "lrs2"),
                 folder_clips(SHARED / "train" / "vox-lrw"),
                 _doubtful(folder_clips(SHARED / "dev", "eval", "original", "dev-eval")),
                 folder_clips(SHARED / "dev", "eval", "generated", "dev-eval-renders")]
    elif name == "relative":
        from tools.people import training_sources

        sets = [[Clip(str(p), p.name, source, "original", False) for p in paths]
                for source, paths in training_sources(relative=True).items()]
    elif name == "seen":
        from avsync.model.data import held_out
        from avsync.model.train import TrainConfig
        from tools.people import training_sources

        sets = [[Clip(str(p), p.name, f"seen:{source}", "original", True) for p in paths
                 if held_out(p.name, TrainConfig.val_share)]
                for source, paths in training_sources().items()]
    elif name in ("zero", "zero-held-out"):
        from avsync.model.data import held_out
        from avsync.model.train import TrainConfig

        sets = [folder_clips(SHARED / "train" / "grid-s1"),
                folder_clips(SHARED / "train" / "news-ar")]
        if name == "zero-held-out":
            sets = [[c for c in s if held_out(c.clip, TrainConfig.val_share)] for s in sets]
    else:
        raise ValueError(f"unknown suite {name!r}: validation, seen, relative, zero or "
                         "zero-held-out")
    return [c for s in sets for c in s[:max_clips]]
