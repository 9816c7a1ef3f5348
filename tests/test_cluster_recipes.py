"""cluster/ recipes: every YAML parses and has what its tool requires; every shell script parses (`bash -n`).

No cluster is started here (see test_cluster_local.py / test_cluster_sweep.py for that): these are static checks
that catch a broken recipe before a user pays for nodes.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
CLUSTER = ROOT / "cluster"


def _pin(name: str) -> str:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        m = re.match(rf"^{re.escape(name)}==([\w.]+)", line.strip())
        if m:
            return m.group(1)
    raise AssertionError(f"{name} is not pinned in constraints.txt")


def _docs(path: Path) -> list[dict]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path}: no YAML document"
    return docs


def _by_kind(kind: str) -> list[tuple[Path, dict]]:
    return [
        (p, d)
        for p in sorted(CLUSTER.rglob("*.yaml"))
        for d in _docs(p)
        if isinstance(d, dict) and d.get("kind") == kind
    ]


YAMLS = sorted(CLUSTER.rglob("*.yaml")) + sorted(CLUSTER.rglob("*.yml"))
SCRIPTS = sorted(CLUSTER.rglob("*.sh")) + sorted(CLUSTER.rglob("*.sbatch"))


def test_recipes_exist_with_readmes():
    for sub in ("ray-up", "kuberay", "slurm", "mlflow", "local"):
        d = CLUSTER / sub
        assert d.is_dir(), d
        assert (d / "README.md").is_file(), f"{d}: every recipe has a short README"
    assert (CLUSTER / "README.md").is_file()
    assert YAMLS and SCRIPTS


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_parses(path):
    for doc in _docs(path):
        assert isinstance(doc, dict), f"{path}: each document is a mapping"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shell_scripts_parse(path):
    out = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert path.read_text().startswith("#!"), f"{path}: needs a shebang"
    if path.suffix == ".sh":
        assert path.stat().st_mode & 0o111, f"{path}: not executable"


def test_no_script_uses_broad_kills():
    """Shared machines: stop processes by PID / process group, never by name, never `ray stop` locally."""
    for path in [*CLUSTER.joinpath("local").glob("*.sh"), CLUSTER / "mlflow" / "server.sh"]:
        code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        for bad in ("pkill", "killall", "ray stop", "kill -9 $(p"):
            assert bad not in code, f"{path}: uses {bad!r}"


# --- ray up ---------------------------------------------------------------------------------------------------
def test_ray_up_config():
    path = CLUSTER / "ray-up" / "aws.yaml"
    (cfg,) = _docs(path)
    for key in ("cluster_name", "provider", "available_node_types", "head_node_type", "setup_commands"):
        assert cfg.get(key), f"{path}: missing {key}"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        assert cfg.get(key), f"{path}: missing {key}"
    # Ray's own schema (what `ray up` validates against), read without importing ray.
    spec = importlib.util.find_spec("ray")
    if spec is not None and spec.submodule_search_locations:
        import jsonschema

        schema_path = Path(next(iter(spec.submodule_search_locations))) / "autoscaler" / "ray-schema.json"
        jsonschema.validate(cfg, json.loads(schema_path.read_text()))

    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    head = types[cfg["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0, "the head is a CPU node"
    gpu_types = [t for n, t in types.items() if n != cfg["head_node_type"]]
    assert gpu_types, "GPU worker node types"
    ray_version = _pin("ray")

    # every node installs the project with the constraints file; GPU nodes install a CUDA torch FIRST
    setup = " && ".join(cfg["setup_commands"])
    assert "-c constraints.txt" in setup and "-e ." in setup
    for t in gpu_types:
        cmds = t["worker_setup_commands"]
        torch_at = next(i for i, c in enumerate(cmds) if "torch" in c and "download.pytorch.org/whl/cu" in c)
        project_at = next(i for i, c in enumerate(cmds) if "-e ." in c)
        assert torch_at < project_at, "CUDA torch before the project"
        assert any("grep -v '^torch'" in c for c in cmds), "the CPU torch pin is dropped on GPU nodes"
        assert "InstanceType" in t["node_config"]
    assert any("ray start --head" in c for c in cfg["head_start_ray_commands"])
    assert any("ray start --address=$RAY_HEAD_IP" in c for c in cfg["worker_start_ray_commands"])
    assert any("cluster/mlflow/server.sh start" in c for c in cfg["head_start_ray_commands"])
    for image in (cfg["docker"]["head_image"], cfg["docker"]["worker_image"]):
        assert ray_version in image, f"{image}: Ray {ray_version} on every node"
    assert "." in cfg["file_mounts"].values(), "the project is synced to every node"


# --- KubeRay --------------------------------------------------------------------------------------------------
def _check_cluster_spec(where: str, spec: dict, claims: set[str]) -> None:
    assert spec.get("rayVersion") == _pin("ray"), f"{where}: rayVersion must match constraints.txt"
    head = spec["headGroupSpec"]
    containers = head["template"]["spec"]["containers"]
    assert containers and containers[0]["name"] == "ray-head"
    assert "rayStartParams" in head
    groups = spec["workerGroupSpecs"]
    assert groups
    gpu = False
    for g in groups:
        assert g["groupName"] and "rayStartParams" in g
        cs = g["template"]["spec"]["containers"]
        assert cs and all(c.get("image") and c.get("name") for c in cs)
        gpu |= any(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu") for c in cs)
    assert gpu, f"{where}: a worker group with GPUs (limits nvidia.com/gpu)"
    for c in containers:
        assert c.get("image") and c.get("name")
    for pod in [head["template"]["spec"], *(g["template"]["spec"] for g in groups)]:
        for v in pod.get("volumes", []):
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in claims, f"{where}: unknown claim {v}"


def _claims() -> set[str]:
    return {d["metadata"]["name"] for _, d in _by_kind("PersistentVolumeClaim")}


def _services_select_heads(path: Path, head_labels: dict) -> None:
    for doc in _docs(path):
        if doc.get("kind") == "Service":
            sel = doc["spec"]["selector"]
            assert all(head_labels.get(k) == v for k, v in sel.items()), f"{path}: Service selects no head"


def test_kuberay_raycluster():
    found = _by_kind("RayCluster")
    assert found
    for path, doc in found:
        assert doc["apiVersion"] == "ray.io/v1" and doc["metadata"]["name"]
        _check_cluster_spec(str(path), doc["spec"], _claims())
        _services_select_heads(path, doc["spec"]["headGroupSpec"]["template"]["metadata"]["labels"])


def test_kuberay_rayjob_runs_a_sweep():
    found = _by_kind("RayJob")
    assert found
    for path, doc in found:
        assert doc["apiVersion"] == "ray.io/v1" and doc["metadata"]["name"]
        spec = doc["spec"]
        argv = shlex.split(spec["entrypoint"])
        assert argv[:2] == ["mrmp", "sweep"] and argv[argv.index("--address") + 1] == "auto"
        _check_cluster_spec(str(path), spec["rayClusterSpec"], _claims())
        _services_select_heads(
            path, spec["rayClusterSpec"]["headGroupSpec"]["template"]["metadata"]["labels"]
        )


def test_dockerfile_copies_existing_paths():
    text = (CLUSTER / "kuberay" / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY"):
            for src in line.split()[1:-1]:
                if not src.startswith("--"):
                    assert (ROOT / src).exists(), f"Dockerfile copies a missing path: {src}"
    assert _pin("ray") in text


# --- Slurm ----------------------------------------------------------------------------------------------------
def test_slurm_script():
    text = (CLUSTER / "slurm" / "mrmp-sweep.sbatch").read_text()
    assert "#SBATCH --nodes=" in text
    commands = text.replace("\\\n", " ").splitlines()  # logical lines: continuations joined
    assert any(re.match(r"\s*srun .*ray start --head .*--block", c) for c in commands)
    assert any(re.match(r"\s*srun .*ray start --address=.*--block", c) for c in commands)
    assert "export RAY_AUTH_MODE" in text and "mrmp sweep" in text and "--address" in text


# --- the sweep keys the recipes set are real sweep keys ----------------------------------------------------------
def _recipe_overrides() -> list[tuple[Path, str]]:
    out = []
    for path in [*YAMLS, *SCRIPTS, *CLUSTER.rglob("*.md")]:
        for m in re.finditer(r"--set[ =]\"?(sweep\.[a-z_.]+)=", path.read_text()):
            out.append((path, m.group(1)))
    return out


def test_recipe_sweep_overrides_are_valid_keys(tmp_path):
    pytest.importorskip("mrmp.sweep.spec")
    from mrmp.sweep.spec import load_sweep

    quickstart = ROOT / "sweeps" / "quickstart.yaml"
    if not quickstart.exists():
        pytest.skip("sweeps/quickstart.yaml is not there yet")
    values = {
        "sweep.storage.root": str(tmp_path / "shared"),
        "sweep.tracking.uri": "http://10.0.0.1:5000",
        "sweep.resources.gpu": "0.25",
    }
    keys = sorted({k for _, k in _recipe_overrides()})
    assert keys, "the recipes point the sweep at shared storage and the tracking server"
    unknown = [k for k in keys if k not in values]
    assert not unknown, f"add a sample value for {unknown}"
    spec = load_sweep(quickstart, [f"{k}={values[k]}" for k in keys])
    assert str(spec.root) == values["sweep.storage.root"]
    assert spec.tracking.uri == "http://10.0.0.1:5000"


def test_every_recipe_hides_gpus_from_zero_gpu_trials():
    """Ray >= 2.49 leaves CUDA_VISIBLE_DEVICES unset for a zero-GPU trial; every recipe sets the override."""
    for rel in (
        "ray-up/aws.yaml",
        "kuberay/raycluster.yaml",
        "kuberay/rayjob.yaml",
        "slurm/mrmp-sweep.sbatch",
        "local/start.sh",
    ):
        assert "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO" in (CLUSTER / rel).read_text(), rel
    for path, doc in _by_kind("RayCluster") + [
        (p, {"spec": d["spec"]["rayClusterSpec"]}) for p, d in _by_kind("RayJob")
    ]:
        spec = doc["spec"]
        pods = [
            spec["headGroupSpec"]["template"]["spec"],
            *(g["template"]["spec"] for g in spec["workerGroupSpecs"]),
        ]
        for pod in pods:
            ray_container = pod["containers"][0]
            names = {e["name"]: e.get("value") for e in ray_container.get("env", [])}
            assert names.get("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO") == "1", (path, ray_container["name"])
