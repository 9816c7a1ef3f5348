"""`mrmp verify`: re-run what an export manifest published and check it still reproduces within its interval."""

from __future__ import annotations

import argparse

EPILOG = """examples:
  mrmp verify results/sweeps/quickstart/best/manifest.json             # every method's best trial
  mrmp verify results/sweeps/quickstart/best/manifest.json --only mrmp # one of them
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="re-run an export manifest's selections and check they reproduce within their interval",
        description="For each entry of a manifest written by `mrmp export` (or those named by --only), "
        "re-train every unit of its trial (each repeat and target rate, from the recorded configs) and compare "
        "the new validation mean with the published 95 %% interval. Exit 0 when every entry reproduces, 1 "
        "otherwise. The re-run costs what the trials cost (a few trainings each).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("manifest", help="manifest.json written by `mrmp export`")
    p.add_argument(
        "--only", action="append", default=[], metavar="METHOD|FILE", help="check these entries only"
    )
    p.add_argument("--out", default=None, help="also write the table (markdown) and the figures (JSON) here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from mrmp.provenance import record
    from mrmp.sweep.verify import table, verify
    from mrmp.validation import ConfigError, Issue

    if not Path(args.manifest).is_file():
        raise ConfigError(
            [Issue(args.manifest, "", "no such manifest (write one with `mrmp export SWEEP --out DIR`)")]
        )
    checks = verify(args.manifest, args.only or None)
    if not checks:
        raise ConfigError([Issue("--only", "", f"no entry of {args.manifest} matches {args.only}")])
    lines = table(checks)
    print("\n".join(lines))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "verify.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        doc = {
            "manifest": str(args.manifest),
            **record(),
            "checks": [
                {
                    "file": c.file,
                    "metric": c.metric,
                    "published": c.published,
                    "rerun": None if c.rerun is None else c.rerun.__dict__,
                    "reproduces": c.reproduces,
                }
                for c in checks
            ],
        }
        (out / "verify.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0 if all(c.reproduces for c in checks) else 1
