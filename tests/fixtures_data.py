"""Writers for small dataset trees in the exact real on-disk formats (datasets.md), for the data tests.

Written independently of mrmp.data's own writer so that the parsers are checked against the spec, not
against themselves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SBU_SETS = (
    "s01s02", "s01s03", "s01s07", "s02s01", "s02s03", "s02s06", "s02s07",
    "s03s02", "s03s04", "s03s05", "s03s06", "s04s02", "s04s03", "s04s06",
    "s05s02", "s05s03", "s06s02", "s06s03", "s06s04", "s07s01", "s07s03",
)  # fmt: skip
# the README's folds, written out by set name (not derived from the code under test)
SBU_FOLD_NAMES = (
    {"s01s02", "s03s04", "s05s02", "s06s04"},
    {"s02s03", "s02s07", "s03s05", "s05s03"},
    {"s01s03", "s01s07", "s07s01", "s07s03"},
    {"s02s01", "s02s06", "s03s02", "s03s06"},
    {"s04s02", "s04s03", "s04s06", "s06s02", "s06s03"},
)


def sbu_frames(rng: np.random.Generator, t: int) -> np.ndarray:
    """Plausible normalised SBU values (t, 2, 15, 3), already rounded to 5 significant digits."""
    base = np.stack([np.full((15, 3), (0.3, 0.5, 1.7)), np.full((15, 3), (0.7, 0.5, 1.8))])
    x = base + rng.normal(0.0, 0.1, (t, 2, 15, 3))
    return np.array([[float(f"{v:.5g}") for v in row] for row in x.reshape(t, -1)]).reshape(t, 2, 15, 3)


def sbu_text(frames: np.ndarray, first_frame: int = 566, newline: str = "\n") -> str:
    """``skeleton_pos.txt`` text: ``frame,PA(1..15),PB(1..15)``, 91 comma-separated fields, ~5 significant digits."""
    lines = []
    for i, f in enumerate(frames.reshape(len(frames), 90)):
        lines.append(",".join([str(first_frame + i)] + [f"{v:.5g}" for v in f]))
    return newline.join(lines) + newline


def write_sbu_tree(root: Path, layout: dict[str, str], seed: int = 0) -> dict[str, np.ndarray]:
    """Write ``{seq_id: folder prefix}`` (seq_id ``sXXsYY/AA/NNN``, prefix e.g. ``""``, ``"Clean/"`` or
    ``"s01s03/"`` for the doubled folder). Returns ``{seq_id: values (T, 2, 15, 3)}``."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, (seq_id, prefix) in enumerate(sorted(layout.items())):
        frames = sbu_frames(rng, 10 + k % 5)
        path = root / f"{prefix}{seq_id}" / "skeleton_pos.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sbu_text(frames, first_frame=566 + 7 * k), encoding="utf-8")
        out[seq_id] = frames
    return out


def fpha_frames(rng: np.random.Generator, t: int) -> np.ndarray:
    """Plausible FPHA values in mm (t, 21, 3), rounded to 4 decimals."""
    x = np.array([20.0, -10.0, 420.0]) + rng.normal(0.0, 40.0, (t, 21, 3))
    return np.round(x, 4)


def fpha_text(frames: np.ndarray, newline: str = "\n") -> str:
    """``skeleton.txt`` text: ``t x1 y1 z1 ... x21 y21 z21``, 64 space-separated fields, 0-based frames."""
    return "".join(
        " ".join([str(i)] + [f"{v:.4f}" for v in f]) + newline
        for i, f in enumerate(frames.reshape(len(frames), 63))
    )


def split_text(train: list[tuple[str, int]], test: list[tuple[str, int]], newline: str = "\r\n") -> str:
    """``data_split_action_recognition.txt`` with ``Training N`` / ``Test M`` headers, a blank line and
    trailing blanks (as a hand-edited file may have)."""
    lines = [f"Training {len(train)}"] + [f"{p} {lab}" for p, lab in train]
    lines += ["", f"Test {len(test)}  "] + [f"{p} {lab} " for p, lab in test]
    return newline.join(lines) + newline


FPHA_ENTRIES = {
    "train": [
        ("Subject_1/open_juice_bottle/2", 0),
        ("Subject_1/close_juice_bottle/2", 1),
        ("Subject_2/pour_milk/1", 12),
        ("Subject_6/high_five/4", 44),
    ],
    "test": [
        ("Subject_1/open_juice_bottle/1", 0),
        ("Subject_2/close_juice_bottle/3", 1),
        ("Subject_4/high_five/1", 44),
    ],
}


def write_fpha_tree(
    root: Path, annotation: str = "Hand_pose_annotation_v1", doubled: bool = False, seed: int = 0
) -> dict[str, np.ndarray]:
    """Write the FPHA_ENTRIES release (split file with CRLF, action_object_info.txt, skeleton files) under
    ``root``. Returns ``{rel: values (T, 21, 3)}``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "data_split_action_recognition.txt").write_bytes(
        split_text(FPHA_ENTRIES["train"], FPHA_ENTRIES["test"]).encode()
    )
    info = ["action_id  action_name   object_name object_pose scenario"]
    info += ["1 open_juice_bottle juice_bottle 1 kitchen", "2 close_juice_bottle juice_bottle 1 kitchen"]
    info += ["4  open_peanut_butter  peanut_butter 0 kitchen"]
    (root / "action_object_info.txt").write_text("\n".join(info) + "\n", encoding="utf-8")
    base = root / annotation / annotation if doubled else root / annotation
    out = {}
    for k, (rel, _) in enumerate(FPHA_ENTRIES["train"] + FPHA_ENTRIES["test"]):
        frames = fpha_frames(rng, 5 + k)
        path = base / rel / "skeleton.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(fpha_text(frames), encoding="utf-8")
        out[rel] = frames
    return out
