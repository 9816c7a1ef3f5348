"""`mrmp validate`: check run configs and sweep files without running anything."""

from __future__ import annotations

import argparse
import sys

EPILOG = """example:
  mrmp validate sweeps/*.yaml my_run.yaml
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="validate run configs and sweep files",
        description="Exit 0 when every file is valid; otherwise print one line per problem "
        "(file:line: key: message) and exit 2.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", help="YAML files (a file with a top-level `sweep:` is a sweep file)")
    p.set_defaults(func=run)


def validate_file(path: str) -> list:
    """Issues found in one file (empty when valid)."""
    from mrmp.config import ConfigError, load_config, read_yaml

    try:
        raw, _ = read_yaml(path)
        if isinstance(raw, dict) and "sweep" in raw:
            from mrmp.sweep.spec import load_sweep  # pure parsing: no Ray import

            load_sweep(path)
        else:
            load_config(path)
    except ConfigError as e:
        return e.issues
    return []


def run(args: argparse.Namespace) -> int:
    bad = 0
    for path in args.files:
        issues = validate_file(path)
        for issue in issues:
            print(f"error: {issue}", file=sys.stderr)
        bad += bool(issues)
        if not issues:
            print(f"ok: {path}")
    return 2 if bad else 0
