"""`mrmp data`: summarise a dataset, or write the synthetic data in the real on-disk format."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

SUMMARY_EPILOG = """example:
  mrmp data summary --dataset synthetic-fpha --seed 1
  mrmp data summary --dataset sbu --root ~/data/SBU-Kinect-Interaction
"""
SYNTH_EPILOG = """example:
  mrmp data synth --like sbu --out data/synthetic-sbu
  mrmp data summary --dataset synthetic-sbu --root data/synthetic-sbu   # read back through the real loader
"""
DATA_EPILOG = """example:
  mrmp data summary --dataset synthetic-sbu
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``data`` with its ``summary`` and ``synth`` subcommands to the top-level parser."""
    p = sub.add_parser(
        "data",
        help="inspect datasets or write the synthetic ones to disk",
        description="Dataset tools: `summary` prints one JSON object describing a dataset; `synth` writes the "
        "synthetic SBU-like or FPHA-like data in the real datasets' on-disk format.",
        epilog=DATA_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=lambda args: _usage(p))
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    s = dsub.add_parser(
        "summary",
        help="print a dataset's sizes, frame range and split sizes as JSON",
        description="Load a dataset (real or synthetic) and print ONE JSON object: dataset, sequences, classes, "
        "joints, persons, frames_min, frames_max and splits (train/test counts per split).",
        epilog=SUMMARY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--dataset", required=True, help="synthetic-sbu, synthetic-fpha, sbu or fpha")
    s.add_argument("--root", default=None, help="dataset directory (required for sbu / fpha)")
    s.add_argument("--seed", type=int, default=0, help="synthetic generator seed (default 0)")
    s.set_defaults(func=summary)

    w = dsub.add_parser(
        "synth",
        help="write a synthetic dataset in the real on-disk format",
        description="Generate the synthetic SBU-like or FPHA-like dataset and write it under --out, exactly as "
        "the real dataset is laid out. The directory appears atomically (written next to it, then renamed).",
        epilog=SYNTH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    w.add_argument("--like", required=True, choices=("sbu", "fpha"), help="which dataset to imitate")
    w.add_argument("--out", required=True, help="output directory (must not exist or be empty)")
    w.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    w.add_argument(
        "--difficulty", type=float, default=None, help="0 (clean) .. 1 (hard); default: the calibrated value"
    )
    w.add_argument("--force", action="store_true", help="replace a non-empty --out")
    w.set_defaults(func=synth)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def summary(args: argparse.Namespace) -> int:
    """`mrmp data summary`: print dataset_summary as one JSON object."""
    from mrmp.data import DataError, dataset_summary, load_dataset

    try:
        ds = load_dataset(args.dataset, args.root, seed=args.seed)
    except DataError as exc:
        return _fail(str(exc))
    print(json.dumps(dataset_summary(ds)))
    return 0


def synth(args: argparse.Namespace) -> int:
    """`mrmp data synth`: write into a temporary sibling directory, then rename it to --out."""
    from mrmp.data import DataError, dataset_summary, write_synthetic

    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        return _fail(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        return _fail(f"{out}: directory is not empty (use --force to replace it)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the result should look like any new directory
    except OSError as exc:
        return _fail(f"{out}: cannot create: {exc.strerror or exc}")
    old = None
    try:
        ds = write_synthetic(args.like, tmp, seed=args.seed, difficulty=args.difficulty)
        if out.is_dir():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
        tmp.rename(out)
    except (OSError, DataError, ValueError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists():
            old.rename(out)  # put the previous contents back
        return _fail(f"{out}: {exc}")
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    print(json.dumps({"out": str(out), **dataset_summary(ds)}))
    return 0
