"""`mrmp predict`: run a pruned network file on a dataset split: the check that the small network works."""

from __future__ import annotations

import argparse

EPILOG = """example:
  mrmp train --set method.name=mrmp --out runs/mrmp
  mrmp export-network runs/mrmp --rate 0.9 --out mrmp-90.pt
  mrmp predict mrmp-90.pt                       # the test split of the data it was trained on
  mrmp predict mrmp-90.pt --split val
  mrmp predict mrmp-90.pt --data sbu --root /data/SBU --fold 3
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="run a pruned network file on a dataset split: accuracy, weights kept, file size",
        description="Load NETWORK (a file written by `mrmp export-network`, read with weights_only=True), "
        "rebuild the pruned GCN and run it on a split of the data it was trained on (or of --data/--root/"
        "--fold). Prints the accuracy, the prunable weights kept, the parameters that are non-zero and the "
        "file's size. Nothing is written.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("network", metavar="NETWORK", help="network file (mrmp export-network --out)")
    p.add_argument("--split", choices=("test", "val"), default="test", help="which split (default test)")
    p.add_argument("--data", default=None, help="data.name to run on instead of the network's own")
    p.add_argument("--root", default=None, help="data.root (the dataset folder) for real data")
    p.add_argument("--fold", type=int, default=None, help="data.fold instead of the network's own")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.set_defaults(func=run)


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f} %" if whole else "-"


def run(args: argparse.Namespace) -> int:
    from mrmp.data import get_dataset
    from mrmp.train.export import load_network, network_data, score_network
    from mrmp.validation import ConfigError, Issue

    net = load_network(args.network, device=args.device)
    info = net.info
    data = network_data(net, args.data, args.root, args.fold)
    cfg_data = net.config.data
    fold = args.fold if args.fold is not None else cfg_data.fold
    name = args.data or cfg_data.name
    if args.split == "val" and not data.has_val:
        raise ConfigError(
            [Issue(str(net.path), "data.val_fraction", "is 0 for this network's run: no validation split")]
        )
    score = score_network(net, data, args.split)
    trained = "any rate" if info.trained_rates is None else ", ".join(f"{r:g}" for r in info.trained_rates)
    print(f"network   {net.path}: {info.method} at rate {info.rate:g} (trained for {trained})")
    print(f"size      {net.bytes:,} bytes ({', '.join(sorted(set(info.encodings.values())))} encoded)")
    print(
        f"weights   {info.kept:,} of {info.prunable:,} prunable kept ({_pct(info.kept, info.prunable)}), "
        f"{info.nonzero:,} of {info.params:,} parameters non-zero"
    )
    print(f"data      {name} fold {fold}, {args.split} split: {score.clips} clips")
    print(f"          {get_dataset(name).describe()}")
    per_clip = 1000.0 * score.seconds / score.clips if score.clips else 0.0
    print(
        f"accuracy  {score.accuracy:.4f} ({score.correct}/{score.clips}); "
        f"{per_clip:.3f} ms per clip on {args.device} (one batch)"
    )
    recorded = info.test_accuracy if args.split == "test" else info.val_accuracy
    same_data = name == info.dataset and f"fold{fold}" == info.split and args.root is None
    if same_data and recorded is not None:
        if round(recorded * score.clips) == score.correct:  # recorded as a float32 mean
            print(f"          as recorded when the file was written ({recorded:.4f})")
        else:
            print(
                f"warning: recorded {recorded:.4f} when the file was written; the data or mrmp changed since?"
            )
    return 0
