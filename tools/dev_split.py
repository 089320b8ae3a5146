"""Train/eval split of the development clips, by source and speaker.

No speaker may sit on both sides: clips that share a person (OpenTalker's clip 1 is
Zz-ww's input; "M030" of MEAD is in both jixinya's and ali-vilab's; SyncTalk's and
Real3DPortrait's demos use the same presenter) are kept together. Everything not
named here is training data.
"""

from __future__ import annotations

import csv
from pathlib import Path

EVAL_SOURCES = {
    "OpenTalker", "Zz-ww", "yerfor", "ZiqiaoPeng", "astorfi", "jixinya", "ali-vilab",
    "liutaocode", "sibozhang", "primepake", "saifhassan",
}
MEDIA_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".ts", ".webm"}


def split_of(path: str | Path) -> str:
    owner = Path(path).name.split("__", 1)[0]
    return "eval" if owner in EVAL_SOURCES else "train"


def clips(folder: str | Path, split: str = "all") -> list[Path]:
    """Media files of a folder (CATALOG.tsv order when there is one), in a split."""
    folder = Path(folder)
    catalog = folder / "CATALOG.tsv"
    if catalog.exists():
        with catalog.open() as f:
            names = [row["file"] for row in csv.DictReader(f, delimiter="\t")]
        paths = [folder / n for n in names if (folder / n).exists()]
    else:
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in MEDIA_SUFFIXES)
    return [p for p in paths if split == "all" or split_of(p) == split]
