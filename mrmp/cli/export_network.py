"""`mrmp export-network`: a trained run's network pruned at one rate, as a small file for a device."""

from __future__ import annotations

import argparse

EPILOG = """example:
  mrmp train --set method.name=mrmp --out runs/mrmp
  mrmp export-network runs/mrmp --rate 0.9 --out mrmp-90.pt     # MRMP: any rate, no retraining
  mrmp export-network runs/mrmp --rate 0.98 --out mrmp-98.pt
  mrmp train --set method.name=srmp --set method.rate=0.9 --out runs/srmp
  mrmp export-network runs/srmp --out srmp-90.pt                # single-rate: its trained rate
  mrmp predict mrmp-90.pt                                       # check that it runs
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-network",
        help="write a trained run's network pruned at one rate as a small file (sparse; weights_only)",
        description="Read RUN (a `mrmp train` output folder, or its model.pt: a sweep trial logs the same "
        "file as its `model.pt` artifact), bake the method's hard mask at --rate into the prunable weights and "
        "write them sparse to --out: per matrix a bitmask plus the kept values, kept positions plus values, or "
        "dense values, whichever is smallest, so the file shrinks with the rate. It loads with "
        "torch.load(..., weights_only=True); `mrmp predict` runs it. A network read at any rate (MRMP, MP "
        "without fine-tuning, random) is written at any rate in [0, 1); a single-rate one (SRMP, TCMP, MP "
        "with fine-tuning, dense) only at its trained rate, the default. The network is scored at that rate on "
        "its run's validation and test splits (so its data must be at hand).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN", help="`mrmp train --out` folder, or a model.pt of that form")
    p.add_argument("--out", required=True, help="the network file to write")
    p.add_argument(
        "--rate", type=float, default=None, help="pruning rate (default: a single-rate method's own)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrmp.train.export import export_run

    written = export_run(args.run, args.out, args.rate)
    info = written.info
    val = "-" if info.val_accuracy is None else f"{info.val_accuracy:.4f}"
    share = 100.0 * info.kept / info.prunable if info.prunable else 0.0
    print(
        f"{written.path}: {info.method} at rate {info.rate:g}, {info.kept:,} of {info.prunable:,} prunable "
        f"weights kept ({share:.1f} %), {written.bytes:,} bytes"
    )
    print(
        f"accuracy at this rate: validation {val}, test {info.test_accuracy:.4f} ({info.dataset} {info.split})"
    )
    print(f"check it with: mrmp predict {written.path}")
    return 0
