"""FPHA (First-Person Hand Action): ``skeleton.txt`` parser, split file reader and loader (datasets.md section 2)."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

from ._text import parse_table, read_text
from .dataset import SkeletonDataset
from .errors import DataError, many_files_error
from .graph import FPHA_GRAPH

FPHA_CLASSES = (
    "open_juice_bottle", "close_juice_bottle", "pour_juice_bottle", "open_peanut_butter",
    "close_peanut_butter", "prick", "sprinkle", "scoop_spoon", "put_sugar", "stir", "open_milk",
    "close_milk", "pour_milk", "drink_mug", "put_tea_bag", "put_salt", "open_liquid_soap",
    "close_liquid_soap", "pour_liquid_soap", "wash_sponge", "flip_sponge", "scratch_sponge",
    "squeeze_sponge", "open_soda_can", "use_flash", "write", "tear_paper", "squeeze_paper", "open_letter",
    "take_letter_from_enveloppe", "read_letter", "flip_pages", "use_calculator", "light_candle",
    "charge_cell_phone", "unfold_glasses", "clean_glasses", "open_wallet", "give_coin", "receive_coin",
    "give_card", "pour_wine", "toast_wine", "handshake", "high_five",
)  # fmt: skip
FPHA_FIELDS = 64  # frame number + 21 joints x (x, y, z), in mm
SPLIT_FILE = "data_split_action_recognition.txt"
INFO_FILE = "action_object_info.txt"
ANNOTATION_DIRS = ("Hand_pose_annotation_v1", "Hand_pose_annotation_v1_1")
_SECTIONS = {"training": "train", "test": "test"}


def parse_fpha_skeleton(path: str | PathLike[str]) -> np.ndarray:
    """Read one ``skeleton.txt`` into float32 ``(T, 21, 3)`` (mm, raw joint order).

    Each non-empty line is ``t x1 y1 z1 ... x21 y21 z21`` = 64 whitespace-separated numbers with a 0-based,
    contiguous frame column ``t``. An empty file raises DataError("empty skeleton file"); loaders collect those.
    """
    path = Path(path)
    table = parse_table(path, FPHA_FIELDS, None, "whitespace-separated")
    if len(table) == 0:
        raise DataError("empty skeleton file", path)
    bad = np.flatnonzero(table[:, 0] != np.arange(len(table)))
    if bad.size:
        row = int(bad[0])
        line = _nonempty_line_number(path, row)
        raise DataError(
            f"frame column should count 0, 1, 2, ...: expected {row}, got {table[row, 0]:g}", path, line
        )
    return table[:, 1:].reshape(len(table), 21, 3).astype(np.float32)


def _nonempty_line_number(path: Path, row: int) -> int:
    lines = [i for i, s in enumerate(read_text(path).splitlines(), start=1) if s.strip()]
    return lines[row]


def _read_split(path: Path) -> dict[str, list[tuple[str, int, int]]]:
    """Like read_fpha_split, but each entry also carries its 1-based line number."""
    sections: dict[str, list[tuple[str, int, int]]] = {}
    headers: dict[str, tuple[int, int, str]] = {}
    current = None
    for i, raw in enumerate(read_text(path).splitlines(), start=1):
        tokens = raw.split()
        if not tokens:
            continue
        key = _SECTIONS.get(tokens[0].lower())
        if key is not None:
            if len(tokens) != 2 or not tokens[1].isdigit():
                raise DataError(
                    f"bad section header {raw.strip()!r}: expected '{tokens[0]} <count>'", path, i
                )
            if key in headers:
                raise DataError(f"second {tokens[0]!r} section (first at line {headers[key][1]})", path, i)
            headers[key] = (int(tokens[1]), i, tokens[0])
            sections[key] = []
            current = key
            continue
        if current is None:
            raise DataError("entry before the first 'Training N' / 'Test M' header", path, i)
        if len(tokens) != 2 or not tokens[1].lstrip("-").isdigit():
            raise DataError(f"expected '<Subject_k/action/seq> <label>', got {raw.strip()!r}", path, i)
        label = int(tokens[1])
        if label < 0:
            raise DataError(f"negative label {label}", path, i)
        rel = tokens[0].replace("\\", "/").strip("/")
        rel = rel[2:] if rel.startswith("./") else rel
        sections[current].append((rel, label, i))
    for key, word in (("train", "Training"), ("test", "Test")):
        if key not in headers:
            raise DataError(f"no '{word} <count>' section header", path)
        count, line, spelled = headers[key]
        if len(sections[key]) != count:
            raise DataError(
                f"header '{spelled} {count}' but the section has {len(sections[key])} entries", path, line
            )
    return sections


def read_fpha_split(path: str | PathLike[str]) -> dict[str, list[tuple[str, int]]]:
    """Parse ``data_split_action_recognition.txt`` into ``{"train": [(rel, label)], "test": [...]}``.

    Sections start at ``Training N`` / ``Test M`` headers and their entry counts must match N and M
    (otherwise a DataError names the header line). CRLF, blank lines and trailing blanks are tolerated.
    """
    return {k: [(rel, lab) for rel, lab, _ in v] for k, v in _read_split(Path(path)).items()}


def read_action_info(path: str | PathLike[str]) -> dict[int, str]:
    """Names from ``action_object_info.txt``: header line skipped, then ``action_id(1-based) name ...``.

    Returns ``{0-based label: action name}``.
    """
    path = Path(path)
    names: dict[int, str] = {}
    lines = read_text(path).splitlines()
    for i, raw in enumerate(lines[1:], start=2):
        tokens = raw.split()
        if not tokens:
            continue
        if len(tokens) < 2 or not tokens[0].isdigit() or int(tokens[0]) < 1:
            raise DataError(f"expected '<action_id> <action_name> ...', got {raw.strip()!r}", path, i)
        names[int(tokens[0]) - 1] = tokens[1]
    return names


def _find_split_file(root: Path) -> Path:
    direct = root / SPLIT_FILE
    if direct.is_file():
        return direct
    nested = sorted(p for p in root.glob(f"*/{SPLIT_FILE}") if not p.parent.name.startswith("."))
    if len(nested) == 1:
        return nested[0]
    raise DataError(f"no {SPLIT_FILE} in it (or in one sub-folder)", root)


def _annotation_bases(base: Path) -> list[Path]:
    bases = []
    for name in ANNOTATION_DIRS:
        d = base / name
        if (d / name).is_dir():  # doubled after unzipping: Hand_pose_annotation_v1/Hand_pose_annotation_v1/
            bases.append(d / name)
        if d.is_dir():
            bases.append(d)
    if not bases:
        raise DataError(f"no {' or '.join(ANNOTATION_DIRS)} folder next to {SPLIT_FILE}", base)
    return bases


def load_fpha(root: str | PathLike[str], name: str = "fpha") -> SkeletonDataset:
    """Load an FPHA release into a SkeletonDataset with the single ``official`` split (600 / 575).

    Only the sequences listed in the split file are read, from ``Hand_pose_annotation_v1`` or ``_v1_1`` (also
    doubled). Sequences are sorted by id (``Subject_k/action/seq``). Class names come from the split paths'
    action folders ordered by label (``action_object_info.txt`` fills labels that no split path shows).
    Missing or empty skeleton files are all reported in one DataError.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError("data root does not exist or is not a directory", root)
    split_path = _find_split_file(root)
    sections = _read_split(split_path)
    bases = _annotation_bases(split_path.parent)

    entries: dict[str, tuple[int, str, int]] = {}  # rel -> (label, section, line)
    names: dict[int, tuple[str, int]] = {}
    labels_of: dict[str, tuple[int, int]] = {}
    for section in ("train", "test"):
        for rel, label, line in sections[section]:
            if rel in entries:
                raise DataError(f"{rel} listed twice (first at line {entries[rel][2]})", split_path, line)
            entries[rel] = (label, section, line)
            parts = rel.split("/")
            if len(parts) < 2:
                raise DataError(f"expected a Subject_k/action/seq path, got {rel!r}", split_path, line)
            action = parts[1]
            if label in names and names[label][0] != action:
                raise DataError(
                    f"label {label} is {action!r} here but {names[label][0]!r} at line {names[label][1]}",
                    split_path,
                    line,
                )
            if action in labels_of and labels_of[action][0] != label:
                raise DataError(
                    f"{action!r} has label {label} here but {labels_of[action][0]} at line {labels_of[action][1]}",
                    split_path,
                    line,
                )
            names.setdefault(label, (action, line))
            labels_of.setdefault(action, (label, line))

    ids = sorted(entries)
    files, missing = {}, []
    for rel in ids:
        found = next((b / rel / "skeleton.txt" for b in bases if (b / rel / "skeleton.txt").is_file()), None)
        if found is None:
            missing.append(str(bases[0] / rel / "skeleton.txt"))
        files[rel] = found
    if missing:
        raise many_files_error(f"listed in {split_path.name} but missing", missing, split_path)
    sequences, empty = [], []
    for rel in ids:
        try:
            sequences.append(parse_fpha_skeleton(files[rel]))
        except DataError as exc:
            if exc.reason != "empty skeleton file":
                raise
            empty.append(str(files[rel]))
    if empty:
        raise many_files_error("empty skeleton file", empty, split_path)

    info_names: dict[int, str] = {}
    for folder in (split_path.parent, root):
        if (folder / INFO_FILE).is_file():
            info_names = read_action_info(folder / INFO_FILE)
            break
    num_classes = max([lab for lab, _, _ in entries.values()] + list(info_names)) + 1
    class_names = [names[k][0] if k in names else info_names.get(k, f"class_{k}") for k in range(num_classes)]
    labels = np.array([entries[rel][0] for rel in ids], dtype=np.int64)
    in_test = np.array([entries[rel][1] == "test" for rel in ids])
    splits = {
        "official": (np.flatnonzero(~in_test).astype(np.int64), np.flatnonzero(in_test).astype(np.int64))
    }
    return SkeletonDataset(
        name=name,
        sequences=sequences,
        labels=labels,
        class_names=class_names,
        graph=FPHA_GRAPH,
        splits=splits,
        ids=ids,
    )
