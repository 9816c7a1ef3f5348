"""`mrmp ui`: the MLflow UI on a sweep's local store, bound to 127.0.0.1."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

EPILOG = """examples:
  mrmp ui sweeps/quickstart.yaml                 # then open http://127.0.0.1:5000
  mrmp ui runs/sweeps/quickstart --port 5055
  mrmp ui                                         # the only sweep under runs/sweeps
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ui",
        help="start the MLflow UI for a sweep's local store",
        description="Start `mlflow ui` on the sweep's MLflow store (one sqlite DB per sweep) and print its "
        "address; Ctrl-C stops it. SWEEP is the sweep file, its folder or its name under runs/sweeps; "
        "without SWEEP, the only sweep under runs/sweeps. A sweep that logs to an MLflow server needs no UI "
        "of its own: its address is printed.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sweep", nargs="?", metavar="SWEEP", help="sweep file, sweep folder or sweep name")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(func=run)


def _only_sweep() -> str:
    from mrmp.sweep.state import DEFAULT_ROOT, STATE_FILE
    from mrmp.validation import ConfigError, Issue

    found = sorted(p.parent.name for p in Path(DEFAULT_ROOT).glob(f"*/{STATE_FILE}"))
    if len(found) == 1:
        return str(Path(DEFAULT_ROOT, found[0]))
    what = f"sweeps under {DEFAULT_ROOT}: {', '.join(found)}" if found else f"no sweep under {DEFAULT_ROOT}"
    raise ConfigError([Issue("mrmp ui", "", f"name the sweep to show ({what})")])


def ui_command(uri: str, host: str, port: int) -> list[str]:
    exe = Path(sys.executable).with_name("mlflow")
    head = [str(exe)] if exe.exists() else [sys.executable, "-m", "mlflow"]
    return [*head, "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port), "--workers", "1"]


def port_taken(host: str, port: int) -> bool:
    """Whether something already listens on host:port (then a second server could not bind there)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_ready(proc: subprocess.Popen, host: str, port: int, timeout: float = 90.0) -> bool:
    """Wait until the server answers /health (True), or its process ends (False)."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return proc.poll() is None


def run(args: argparse.Namespace) -> int:
    from mrmp.sweep.state import open_sweep
    from mrmp.validation import ConfigError, Issue

    state = open_sweep(args.sweep or _only_sweep())
    tracking = state.tracking
    if tracking.backend != "mlflow":
        raise ConfigError(
            [Issue(str(state.dir), "sweep.tracking", f"backend {tracking.backend}: no MLflow store")]
        )
    if not (tracking.uri or "").startswith("sqlite:"):
        print(f"sweep {state.name} logs to {tracking.uri}: open it there (experiment {tracking.experiment})")
        return 0
    if port_taken(args.host, args.port):
        raise ConfigError(
            [
                Issue(
                    "--port",
                    "",
                    f"{args.host}:{args.port} is in use (another UI?); pick a free one, e.g. --port {args.port + 1}",
                )
            ]
        )
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}

    def stop(signum, frame):  # SIGTERM / SIGHUP take the same way out as Ctrl-C: the server goes too
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background by a shell
        signal.signal(signal.SIGINT, stop)
    proc = subprocess.Popen(ui_command(tracking.uri, args.host, args.port), env=env)
    try:
        if not wait_ready(proc, args.host, args.port):
            code = proc.wait()
            print(
                f"error: the MLflow UI did not start (exit {code}); see its messages above", file=sys.stderr
            )
            return code or 1
        print(
            f"MLflow UI for sweep {state.name}: http://{args.host}:{args.port}  "
            f"(experiment {tracking.experiment}, store {tracking.uri}); Ctrl-C stops it",
            flush=True,
        )
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        print("MLflow UI stopped")
        return 0
