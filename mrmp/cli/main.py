"""`mrmp`: one CLI, one module per subcommand (each exposes `register(subparsers)`).

Errors a user can fix (bad config, bad data) print one line per problem and exit 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mrmp import __version__

# name -> module under mrmp.cli; a test keeps this table, the modules and the README's CLI section in sync.
COMMANDS: dict[str, str] = {
    "train": "train",
    "validate": "validate",
    "data": "data",
    "sweep": "sweep",
    "export": "export",
    "export-network": "export_network",
    "predict": "predict",
    "report": "report",
    "ui": "ui",
    "verify": "verify",
    "bench": "bench",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mrmp",
        description="Prune graph convolutional networks for skeleton action recognition; sweep them on Ray.",
    )
    parser.add_argument("--version", action="version", version=f"mrmp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMANDS.values():
        importlib.import_module(f"mrmp.cli.{module}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from mrmp.data.errors import DataError
    from mrmp.validation import ConfigError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as e:
        for issue in e.issues:
            print(f"error: {issue}", file=sys.stderr)
        return 2
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
