"""Who trains and who validates: the speaker-disjoint split of ../shared's clips.

Every set of clips/train and clips/people is either split by speaker or sent whole to
one side; no person sits on both sides (clips/people/README.md: the same person is
never in two of its sets; the one LRS3 speaker shared with lrs-mixed is kept on the
training side with it). The model card declares this split.

Training, trusted (where "in sync" is learnt; every source drawn equally often):
  news-ar (Arabic TV news anchors), grid-s1 (studio), lrs2-bbc (BBC, LRS2-native),
  vox2 (VoxCeleb2), korean-aihub (a studio lip-reading corpus), lrs-mixed (LRS2/LRS3
  clips, a TV scene), lrs3-ted (the TED speakers not in validation, the LRS3 and
  mTEDx samples), broadcast (the two addresses not in validation).
Training, relative (people to learn from, never where zero lies: each clip is
  re-aligned by its own offset as a model trained on the trusted sources measures
  it): lab-stimuli, web, lrs3-ted's AVCrossNet re-muxes (E*_muxed) and its phone
  recording (DomhnallBoyle).
Validation (nobody trained on them), trusted: grid-more (GRID speakers s16, s25, s27,
  s31, studio), lrs3-ted-val (half the LRS3 test speakers), broadcast-val (the CNN
  anchor, the French presidential address), lrs2 and vox-lrw (clips/train; dataset
  crops shipped by repositories); doubtful (shift consistency only, absolute figures
  apart): dev-eval (originals of the dev evaluation split), dev-eval-renders.
Calibration of the confidence: the dev training split (tools/dev_split.py), speakers
  neither training nor validation has.
"""

from __future__ import annotations

import re
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "clips"
TRAIN, PEOPLE = SHARED / "train", SHARED / "people"

# LRS3 test speakers (their YouTube ids) in validation: every other id in sorted
# order, the one shared with lrs-mixed (0gks6ceq4eQ) kept for training
LRS3_VAL_IDS = ("7OMLSs8t1ng", "9uOMectkCCs", "O0JDDyqtSVY", "Sa27SUR0Mlo", "TUxwiVFgghE",
                "Zo62S0ulqhA", "gVfgkFaswn4", "jcp5vvxtEaU", "ooAIIeo4AJQ")
BROADCAST_VAL = ("cnn2_25fps.mp4", "french.mp4")
# clips of doubtful own sync inside a trusted set: trained on as relative material
LRS3_RELATIVE = re.compile(r"^(E\d_muxed|DomhnallBoyle_)")
TRUSTED_TRAIN = ("news-ar", "grid-s1", "lrs2-bbc", "vox2", "korean-aihub", "lrs-mixed",
                 "lrs3-ted", "broadcast")
RELATIVE_TRAIN = ("lab-stimuli", "web", "lrs3-ted-relative")
MEDIA = {".mp4", ".mkv", ".mov", ".avi", ".ts", ".webm", ".mpg"}


def _media(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in MEDIA)


def _lrs3_id(path: Path) -> str | None:
    """The YouTube id of an LRS3 test clip (`<id>_<5 digits>.webm`), else None."""
    m = re.fullmatch(r"([\w-]{11})_\d{5}", path.stem)
    return m.group(1) if m else None


def is_validation(set_name: str, path: Path) -> bool:
    if set_name == "grid-more":
        return True
    if set_name == "lrs3-ted":
        return _lrs3_id(path) in LRS3_VAL_IDS
    if set_name == "broadcast":
        return path.name in BROADCAST_VAL
    return False


def training_sources(relative: bool = False) -> dict[str, list[Path]]:
    """Source name -> its training clips: the trusted sources, or (relative=True) the
    clips of doubtful own sync that train as relative material only."""
    out: dict[str, list[Path]] = {}
    for name in RELATIVE_TRAIN if relative else TRUSTED_TRAIN:
        folder = name.removesuffix("-relative")
        base = TRAIN if folder in ("news-ar", "grid-s1") else PEOPLE
        paths = [p for p in _media(base / folder) if not is_validation(folder, p)]
        if folder == "lrs3-ted":
            paths = [p for p in paths
                     if bool(LRS3_RELATIVE.match(p.name)) == name.endswith("-relative")]
        if paths:
            out[name] = paths
    return out


def validation_sets() -> dict[str, list[Path]]:
    """The people sets' validation clips, by set (trusted: studio, broadcast, LRS3)."""
    return {"grid-more": _media(PEOPLE / "grid-more"),
            "lrs3-ted-val": [p for p in _media(PEOPLE / "lrs3-ted")
                             if is_validation("lrs3-ted", p)],
            "broadcast-val": [p for p in _media(PEOPLE / "broadcast")
                              if is_validation("broadcast", p)]}


def identity(source: str, path: Path) -> str:
    """Who speaks in a training clip, as far as the catalogues tell (news-ar's anchors
    are unlabelled: tools/identities.py clusters them)."""
    name = path.stem
    if source in ("grid-s1", "korean-aihub", "web"):
        return source
    if source in ("lrs3-ted", "lrs3-ted-relative"):
        return f"lrs3:{_lrs3_id(path) or name.replace('choijeongsoo_', '')}"
    if source == "lrs2-bbc":  # one programme per id: the catalogue counts 6 people
        return f"lrs2-bbc:{name.split('__')[0]}"
    if source == "vox2":  # VoxCeleb2 id01175 is clips 29-31, id00100 the rest
        return "vox2:id01175" if name in ("00029", "00030", "00031") else "vox2:id00100"
    if source == "lrs-mixed":
        return "lrs3:0gks6ceq4eQ" if "0gks6ceq4eQ" in name else f"lrs-mixed:{name}"
    if source == "lab-stimuli":  # three recorded sets, one speaker each
        return "lab:" + ("numbered" if name[0].isdigit() else
                         "caps" if name.split("-")[0].isupper() else "vowels")
    return f"{source}:{name}"
