"""SBU Kinect Interaction: the ``skeleton_pos.txt`` parser and a tolerant tree loader (datasets.md section 1)."""

from __future__ import annotations

import re
from os import PathLike
from pathlib import Path

import numpy as np

from ._text import parse_table
from .dataset import SkeletonDataset
from .errors import DataError, many_files_error
from .graph import SBU_GRAPH

SBU_CLASSES = (
    "Approaching",
    "Departing",
    "Kicking",
    "Punching",
    "Pushing",
    "Hugging",
    "ShakingHands",
    "Exchanging",
)
# Set numbers 01..21 of the README download list (datasets.md 1.7).
SBU_SETS = (
    "s01s02", "s01s03", "s01s07", "s02s01", "s02s03", "s02s06", "s02s07",
    "s03s02", "s03s04", "s03s05", "s03s06", "s04s02", "s04s03", "s04s06",
    "s05s02", "s05s03", "s06s02", "s06s03", "s06s04", "s07s01", "s07s03",
)  # fmt: skip
# The official 5-fold cross-validation (README; datasets.md 1.8), as 1-based set numbers.
SBU_FOLD_SETS = ((1, 9, 15, 19), (5, 7, 10, 16), (2, 3, 20, 21), (4, 6, 8, 11), (12, 13, 14, 17, 18))
SBU_FOLDS = tuple(tuple(SBU_SETS[i - 1] for i in fold) for fold in SBU_FOLD_SETS)

SBU_FIELDS = 91  # frame number + 2 persons x 15 joints x (x, y, z)
_SET_RE = re.compile(r"s\d\ds\d\d")
_ACTION_RE = re.compile(r"\d\d")
_SEQ_RE = re.compile(r"\d\d\d")


def parse_sbu_skeleton(path: str | PathLike[str], denormalize: bool = False) -> np.ndarray:
    """Read one ``skeleton_pos.txt`` into float32 ``(T, 2, 15, 3)`` (persons A, B; README joint order).

    Each non-empty line is ``frame,PA(1..15),PB(1..15)`` = 91 comma-separated numbers; the frame column (an
    original recording frame number such as 566) is ignored. Values stay in the released normalised units
    unless ``denormalize``, which applies the README formulas (z from column 2, not the y-column bug).
    """
    path = Path(path)
    table = parse_table(path, SBU_FIELDS, ",", "comma-separated")
    if len(table) == 0:
        raise DataError("empty skeleton file", path)
    xyz = table[:, 1:].reshape(len(table), 2, 15, 3)
    if denormalize:
        xyz = np.stack(
            [1280.0 - xyz[..., 0] * 2560.0, 960.0 - xyz[..., 1] * 1920.0, xyz[..., 2] * 10000.0 / 7.8125],
            axis=-1,
        )
    return xyz.astype(np.float32)


def find_sbu_files(root: Path) -> dict[str, Path]:
    """Map sequence id ``<set>/<AA>/<NNN>`` to its file, searching ``*/<AA>/<NNN>/skeleton_pos.txt`` anywhere
    under ``root``; the set is the nearest ``sXXsYY`` folder above the action folder, so wrapper folders
    (``Clean/``) and doubled folders (``s01s03/s01s03/``) both work. Hidden folders are skipped."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("skeleton_pos.txt")):
        rel = path.relative_to(root).parts
        if any(p.startswith(".") or p == "__MACOSX" for p in rel):
            continue
        if len(rel) < 4 or not _SEQ_RE.fullmatch(rel[-2]) or not _ACTION_RE.fullmatch(rel[-3]):
            continue
        set_name = next((p.lower() for p in reversed(rel[:-3]) if _SET_RE.fullmatch(p.lower())), None)
        if set_name is None:
            raise DataError(
                "cannot tell the subject-pair set: no sXXsYY folder above the action folder", path
            )
        if set_name not in SBU_SETS:
            raise DataError(f"unknown set {set_name!r}; the 21 SBU sets are {', '.join(SBU_SETS)}", path)
        action = int(rel[-3])
        if not 1 <= action <= len(SBU_CLASSES):
            raise DataError(f"action folder {rel[-3]!r} is not one of 01..{len(SBU_CLASSES):02d}", path)
        seq_id = f"{set_name}/{rel[-3]}/{rel[-2]}"
        if seq_id in found:
            raise DataError(
                f"sequence {seq_id} found twice (also at {found[seq_id]}); keep one copy, e.g. only the clean version",
                path,
            )
        found[seq_id] = path
    return found


def sbu_splits(ids: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The official 5 folds for sequence ids ``<set>/...``: ``foldk`` tests on fold k's sets."""
    sets = np.array([i.split("/", 1)[0] for i in ids])
    splits = {}
    for k, fold in enumerate(SBU_FOLDS, start=1):
        test = np.isin(sets, fold)
        splits[f"fold{k}"] = (np.flatnonzero(~test).astype(np.int64), np.flatnonzero(test).astype(np.int64))
    return splits


def load_sbu(root: str | PathLike[str], name: str = "sbu") -> SkeletonDataset:
    """Load an SBU tree (clean version) into a SkeletonDataset.

    Sequences are sorted by id and stored as (T, 30, 3): person A's joints 0-14, then person B's 15-29.
    Labels are ``int(action folder) - 1``; splits ``fold1``..``fold5`` follow the README's cross-validation.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError("data root does not exist or is not a directory", root)
    files = find_sbu_files(root)
    if not files:
        raise DataError("no SBU files found: expected <set>/<AA>/<NNN>/skeleton_pos.txt under it", root)
    ids = sorted(files)
    sequences, empty = [], []
    for seq_id in ids:
        try:
            seq = parse_sbu_skeleton(files[seq_id])
        except DataError as exc:
            if exc.reason == "empty skeleton file":
                empty.append(str(files[seq_id]))
                continue
            raise
        sequences.append(seq.reshape(len(seq), 30, 3))
    if empty:
        raise many_files_error("empty skeleton file", empty, root)
    labels = np.array([int(i.split("/")[1]) - 1 for i in ids], dtype=np.int64)
    return SkeletonDataset(
        name=name,
        sequences=sequences,
        labels=labels,
        class_names=list(SBU_CLASSES),
        graph=SBU_GRAPH,
        splits=sbu_splits(ids),
        ids=ids,
    )
