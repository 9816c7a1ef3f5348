"""Screenshots of what a sweep's user sees: the MLflow UI (`mrmp ui`) and optuna-dashboard, as dated PNGs.

Not part of CI: it needs Debian's Chromium (`apt-get install -y chromium`) and starts two local servers. One
command, re-runnable after any change to the views:

    python3 scripts/screenshots.py runs/sweeps/quickstart           # a sweep's folder (<storage.root>/<name>)

It writes docs/img/<date>-<page>.png (see PAGES) and prints what it wrote. Any Python 3.10+ starts it: the first
run creates a tools venv (`~/.cache/mrmp/shots-venv`, or $MRMP_SHOTS_VENV) with Playwright and optuna-dashboard,
pinned below, and re-runs itself there. Playwright drives the system Chromium (`--chromium`), never a browser
of its own (none can be downloaded here); optuna-dashboard runs from the tools venv, so its SQLAlchemy never
meets mrmp's pin. `mrmp ui` runs from mrmp's own Python (`--python`, default `.venv/bin/python` of this
checkout; PYTHONPATH is passed through, so a worktree's code is what is shown).

Both servers bind to 127.0.0.1 on free ports and are stopped by their PID when the script ends, whatever
happens. The MLflow UI is a single-page app that keeps polling (its network is never idle): each page is shot once
it shows its data (a run's name, drawn charts, table rows) and has stopped changing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import venv
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOOLS = {"playwright": "1.65.2", "optuna-dashboard": "0.21.0"}  # the versions these shots were taken with
TOOLS_VENV = Path(os.environ.get("MRMP_SHOTS_VENV", "~/.cache/mrmp/shots-venv")).expanduser()
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1600, "height": 1000}


# --- the tools venv ------------------------------------------------------------------------------------------


def _in_tools_venv() -> bool:
    return Path(sys.prefix).resolve() == TOOLS_VENV.resolve()


def ensure_tools_venv() -> None:
    """Create the tools venv when missing (or when its pins changed), then re-run this script inside it."""
    python = TOOLS_VENV / "bin" / "python"
    stamp = TOOLS_VENV / "mrmp-tools.json"
    if not python.exists() or not stamp.exists() or json.loads(stamp.read_text()) != TOOLS:
        print(f"creating the tools venv {TOOLS_VENV} ({', '.join(f'{k}=={v}' for k, v in TOOLS.items())})")
        venv.EnvBuilder(with_pip=True, clear=True).create(TOOLS_VENV)
        pins = [f"{k}=={v}" for k, v in TOOLS.items()]
        subprocess.run([str(python), "-m", "pip", "install", "-q", *pins], check=True)
        stamp.write_text(json.dumps(TOOLS))
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


# --- servers -------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen) -> None:
    """Until `url` answers 200 (or the server exits, or `timeout` seconds pass)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass  # not listening yet
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def server(argv: list[str], ready_url: str, name: str, log: Path, timeout: float = 120.0):
    """A server process, ready when `ready_url` answers; SIGTERM to its PID on the way out."""
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
        print(f"{name}: pid {proc.pid}, {ready_url} (log {log})")
        try:
            wait_http(ready_url, timeout, proc)
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            print(f"{name}: stopped (pid {proc.pid})")


def get_json(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


# --- what to photograph ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shot:
    """One page: its file name, its URL, a JavaScript expression that is true once it shows its data, and
    optionally elements to click then, in order (CSS selectors), with the expression that is true once the
    last click's result shows."""

    name: str
    url: str
    ready: str
    clicks: tuple[str, ...] = ()
    clicked_ready: str = "true"


def _text_has(*texts: str) -> str:
    return " && ".join(f"document.body.innerText.includes({json.dumps(t)})" for t in texts)


CHARTS_DRAWN = "document.querySelectorAll('svg.main-svg').length > 0"  # plotly, in both UIs
POINTS_DRAWN = "document.querySelectorAll('.scatterlayer path.point').length > 0"


def mlflow_shots(base: str, experiment: str | None) -> list[Shot]:
    """The MLflow pages: the run list, a child run's overview and charts, the experiment's chart view, and the
    Model Registry (when something is registered). Names and ids come from MLflow's REST API."""
    api = f"{base}/api/2.0/mlflow"
    exps = get_json(f"{api}/experiments/search", {"max_results": 1000})["experiments"]
    exps = [e for e in exps if e["name"] != "Default"]
    if experiment is not None:
        exps = [e for e in exps if e["name"] == experiment]
    if not exps:
        raise SystemExit(f"no MLflow experiment {experiment or ''} in this store")
    exp = exps[0]["experiment_id"]
    runs = get_json(f"{api}/runs/search", {"experiment_ids": [exp], "max_results": 1000}).get("runs", [])

    def is_child(r: dict[str, Any]) -> bool:
        return any(t["key"] == "mlflow.parentRunId" for t in r["data"].get("tags", []))

    children = [r for r in runs if is_child(r)]
    parents = [r for r in runs if not is_child(r)] or runs
    finished = [r for r in children if r["info"]["status"] == "FINISHED"] or children
    first_run = parents[0]["info"]["run_name"] if parents else ""
    shots = [Shot("mlflow-runs", f"{base}/#/experiments/{exp}/runs", _text_has(first_run))]
    if finished:
        child = max(finished, key=lambda r: len(r["data"].get("metrics", [])))["info"]
        url = f"{base}/#/experiments/{exp}/runs/{child['run_id']}"
        shots += [
            Shot("mlflow-child-overview", url, _text_has(child["run_name"], "Parameters")),
            Shot("mlflow-child-charts", f"{url}/model-metrics", CHARTS_DRAWN),
        ]
    charts = f"{base}/#/experiments/{exp}/runs?compareRunsMode=CHART"
    shots.append(Shot("mlflow-compare-charts", charts, CHARTS_DRAWN))
    if children:  # the run list with the parent's row expanded (its +): every trial listed
        # (the chart view's own expand button did not respond to a scripted click; compare charts stay parent-only)
        expand = '[data-component-id*="runnamecellrenderer"]:visible'  # the run-name cell's expand button
        child_shown = _text_has(children[0]["info"]["run_name"])
        runs = f"{base}/#/experiments/{exp}/runs"
        shots.append(Shot("mlflow-runs-expanded", runs, _text_has(first_run), (expand,), child_shown))
    registered = get_json(f"{api}/registered-models/search?max_results=100").get("registered_models", [])
    if registered:
        name = registered[0]["name"]
        shots += [
            Shot("mlflow-models", f"{base}/#/models", _text_has(name)),
            Shot(
                "mlflow-model-versions",
                f"{base}/#/models/{urllib.parse.quote(name)}",
                _text_has(name, "Version"),
            ),
        ]
    return shots


def optuna_shots(base: str) -> list[Shot]:
    studies = get_json(f"{base}/api/studies")["study_summaries"]
    if not studies:
        return [Shot("optuna-studies", f"{base}/dashboard/", "true")]
    study = studies[0]
    sid = study["study_id"]
    return [
        Shot("optuna-studies", f"{base}/dashboard/", _text_has(study["study_name"])),
        Shot("optuna-study", f"{base}/dashboard/studies/{sid}", POINTS_DRAWN),
        Shot("optuna-trials", f"{base}/dashboard/studies/{sid}/trials", _text_has("Trial 0", "Value")),
        Shot("optuna-analytics", f"{base}/dashboard/studies/{sid}/analytics", CHARTS_DRAWN),
    ]


# The MLflow UI opens its "Assistant" side panel on a first visit (a fresh browser profile is always one); a user
# closes it once and it stays closed: the same state, set before each page loads.
MLFLOW_ASSISTANT_CLOSED = (
    "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
    "localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');"
)


def close_first_visit_dialog(page: Any) -> None:
    """Close a dialog the page opened by itself (e.g. the Model Registry's "new UI" promotion on a first
    visit), as a user does once: through its own Close button."""
    dialog = page.get_by_role("dialog")
    if dialog.count() and dialog.first.is_visible():
        close = dialog.first.get_by_role("button", name="Close")
        if close.count():
            close.first.click()
            page.wait_for_timeout(500)


FINGERPRINT = "document.body.innerText.length + ':' + document.querySelectorAll('svg, canvas, path').length"


def wait_ready(page: Any, ready: str, timeout_s: float) -> bool:
    """Until `ready` is true and the page's text and drawing stay unchanged for a second; False on timeout."""
    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + timeout_s
    is_ready, last, stable = False, None, 0
    while time.monotonic() < deadline and stable < 2:
        try:
            is_ready = is_ready or bool(page.evaluate(ready))
            now = page.evaluate(FINGERPRINT)
        except PlaywrightError:  # the single-page app swapped its document mid-evaluation
            now = None
        stable = stable + 1 if is_ready and now == last else 0
        last = now
        page.wait_for_timeout(500)
    return is_ready


def shoot(
    shots: list[Shot], out_dir: Path, stamp: str, chromium: str, timeout_s: float, settle_ms: int
) -> list[Path]:
    """Load each page in headless Chromium, wait until it is ready (`wait_ready`), click what the shot says
    (then wait again), and write its PNG. A page not ready in time is still written, with a warning."""
    from playwright.sync_api import sync_playwright

    written = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
            context.add_init_script(MLFLOW_ASSISTANT_CLOSED)
            for shot in shots:
                page = context.new_page()
                page.goto(shot.url, wait_until="load", timeout=int(timeout_s * 1000))
                ready = wait_ready(page, shot.ready, timeout_s)
                for selector in shot.clicks if ready else ():
                    target = page.locator(selector)
                    ready = bool(target.count())
                    if not ready:
                        break
                    target.first.click()
                    page.wait_for_timeout(500)
                if ready and shot.clicks:
                    ready = wait_ready(page, shot.clicked_ready, timeout_s)
                close_first_visit_dialog(page)
                page.wait_for_timeout(settle_ms)  # charts animate in after the data arrives
                path = out_dir / f"{stamp}-{shot.name}.png"
                page.screenshot(path=str(path))
                page.close()
                written.append(path)
                shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                warning = "" if ready else f"  (WARNING: not ready after {timeout_s:.0f} s)"
                print(f"  {shown}  <- {shot.url}{warning}")
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="the sweep's folder: <storage.root>/<name>")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="where the PNGs go")
    parser.add_argument("--date", default=dt.date.today().isoformat(), help="the date in the file names")
    parser.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"), help="mrmp's Python")
    parser.add_argument(
        "--experiment", default=None, help="MLflow experiment (default: the sweep's only one)"
    )
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium binary")
    parser.add_argument(
        "--timeout", type=float, default=90.0, help="seconds a page may take to show its data"
    )
    parser.add_argument("--settle-ms", type=int, default=1500, help="wait once a page is ready and still")
    args = parser.parse_args(argv)

    sweep = args.sweep_dir.resolve()
    optuna_db = sweep / "optuna.db"
    problems = [
        f"{p}: not found{hint}"
        for p, hint in (
            (sweep, ""),
            (optuna_db, " (the sweep's Optuna study)"),
            (Path(args.python), " (pass --python: the Python mrmp is installed in)"),
            (Path(args.chromium), " (apt-get install -y chromium)"),
        )
        if not p.exists()
    ]
    if problems:
        print("\n".join(f"error: {p}" for p in problems), file=sys.stderr)
        return 2
    if not _in_tools_venv():
        ensure_tools_venv()  # does not return

    args.out.mkdir(parents=True, exist_ok=True)
    logs = Path(os.environ.get("TMPDIR", "/tmp"))
    mlflow_port, optuna_port = free_port(), free_port()
    mlflow_base, optuna_base = f"http://127.0.0.1:{mlflow_port}", f"http://127.0.0.1:{optuna_port}"
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    ui = [
        args.python,
        "-m",
        "mrmp.cli.main",
        "ui",
        str(sweep),
        "--host",
        "127.0.0.1",
        "--port",
        str(mlflow_port),
    ]
    dashboard = [
        str(Path(sys.prefix) / "bin" / "optuna-dashboard"),
        f"sqlite:///{optuna_db}",
        "--host",
        "127.0.0.1",
        "--port",
        str(optuna_port),
        "--server",
        "wsgiref",  # not gunicorn: no control socket under ~/.gunicorn
    ]
    with ExitStack() as stack:
        stack.enter_context(server(ui, f"{mlflow_base}/health", "mrmp ui", logs / "mrmp-shots-mlflow.log"))
        stack.enter_context(
            server(
                dashboard, f"{optuna_base}/api/studies", "optuna-dashboard", logs / "mrmp-shots-optuna.log"
            )
        )
        shots = mlflow_shots(mlflow_base, args.experiment) + optuna_shots(optuna_base)
        print(f"{len(shots)} pages:")
        written = shoot(shots, args.out, args.date, args.chromium, args.timeout, args.settle_ms)
    print(f"wrote {len(written)} PNGs to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
