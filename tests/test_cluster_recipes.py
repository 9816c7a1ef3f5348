"""cluster/ recipes: every YAML parses and has what its tool requires; every shell script parses (`bash -n`).

No cluster is started here (see test_cluster_local.py / test_cluster_sweep.py for that): these are static checks
that catch a broken recipe before a user pays for nodes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
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
    assert "-c constraints.txt" in setup and '-e ".[cluster]"' in setup
    for t in gpu_types:
        cmds = t["worker_setup_commands"]
        torch_at = next(i for i, c in enumerate(cmds) if "torch" in c and "download.pytorch.org/whl/cu" in c)
        project_at = next(i for i, c in enumerate(cmds) if '-e ".[cluster]"' in c)
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


def _cluster_specs() -> list[tuple[Path, dict]]:
    """(file, RayCluster spec) of every RayCluster and of every RayJob's cluster."""
    return [(p, d["spec"]) for p, d in _by_kind("RayCluster")] + [
        (p, d["spec"]["rayClusterSpec"]) for p, d in _by_kind("RayJob")
    ]


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
    for path, spec in _cluster_specs():
        pods = [
            spec["headGroupSpec"]["template"]["spec"],
            *(g["template"]["spec"] for g in spec["workerGroupSpecs"]),
        ]
        for pod in pods:
            ray_container = pod["containers"][0]
            names = {e["name"]: e.get("value") for e in ray_container.get("env", [])}
            assert names.get("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO") == "1", (path, ray_container["name"])


# --- the cluster extra: every recipe installs it -----------------------------------------------------------------
def _project_installs() -> list[tuple[Path, str]]:
    """(file, target) for every `pip install ... -e TARGET` in the recipes and docs/cluster.md."""
    found = []
    for path in [*(p for p in CLUSTER.rglob("*") if p.is_file()), ROOT / "docs" / "cluster.md"]:
        for m in re.finditer(r"pip install [^\n`]*?-e \\?[\"']?(\.(?:\[[\w,]*\])?)", path.read_text()):
            found.append((path, m.group(1)))
    return found


def test_every_recipe_installs_the_cluster_extra():
    """`ray job submit` needs the full dashboard on the head (ray[default]); the cluster extra brings it, pinned."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    extras = dict(re.findall(r"^(cluster|test) = \[(.*)\]$", pyproject, re.M))
    assert re.search(r'"ray\[[a-z,]*default[a-z,]*\]"', extras["cluster"]), extras
    assert '"mrmp[cluster]"' in extras["test"], "the tests submit Ray jobs: the test install brings the extra"
    _pin("grpcio")  # what ray[default] adds is pinned with the rest
    installs = _project_installs()
    wrong = [(str(p.relative_to(ROOT)), target) for p, target in installs if target != ".[cluster]"]
    assert not wrong, f"install the project with its cluster extra: {wrong}"
    where = {str(p.relative_to(ROOT)) for p, _ in installs}
    for rel in (
        "cluster/ray-up/aws.yaml",
        "cluster/kuberay/Dockerfile",
        "cluster/slurm/README.md",
        "docs/cluster.md",
    ):
        assert rel in where, f"{rel} installs the project"
    assert '-e ".[cluster]"' in (ROOT / "README.md").read_text(), "the README names the cluster install"


# --- addresses, CPUs, environment and bindings, as the docs state them ---------------------------------------------
def _logical_lines(path: Path) -> list[str]:
    return path.read_text().replace("\\\n", " ").splitlines()


def _flag(line: str, name: str) -> str:
    """The value of `--name=VALUE` or `--name VALUE` in a command line."""
    argv = shlex.split(line, comments=True)
    for i, arg in enumerate(argv):
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
        if arg == f"--{name}":
            return argv[i + 1]
    raise AssertionError(f"--{name} not in {line!r}")


def _script_default(path: Path, var: str) -> str:
    """VAR's default in a script that sets it as `VAR=${VAR:-DEFAULT}`."""
    m = re.search(rf"^{var}=\$\{{{var}:-([^}}]*)\}}", path.read_text(), re.M)
    assert m, f"{path}: no {var}=${{{var}:-...}}"
    return m.group(1)


NODE_IP = CLUSTER / "node-ip.sh"


def _node_ip_with_hosts(
    tmp_path: Path, hosts: str, hostname: str = "node01", path_env: str | None = None
) -> str:
    """cluster/node-ip.sh run with `hosts` as /etc/hosts and `hostname` as the hostname (private mount and UTS
    namespaces: nothing outside the command sees either)."""
    fake = tmp_path / "hosts"
    fake.write_text(hosts)
    script = 'hostname "$1" && mount --bind "$2" /etc/hosts && exec "$3"'
    env = {**os.environ, **({"PATH": path_env} if path_env else {})}
    out = subprocess.run(
        ["unshare", "--mount", "--uts", "bash", "-c", script, "bash", hostname, str(fake), str(NODE_IP)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _interface_addresses() -> set[str]:
    return set(subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split())


@pytest.fixture
def namespaces(tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) here")
    probe = subprocess.run(["unshare", "--mount", "--uts", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make mount/UTS namespaces here: {probe.stderr.strip()}")
    return tmp_path


def test_head_address_is_never_loopback(namespaces):
    """The Slurm head (and the MLflow server by default) binds cluster/node-ip.sh's address. Checked on fake
    /etc/hosts: a hostname on 127.0.1.1 (Debian/Ubuntu) or 127.0.0.1 (containers) gives the default route's
    interface address instead; a hostname on a routable address gives that address."""
    tmp = namespaces
    own = {a for a in _interface_addresses() if "." in a and not a.startswith("127.")}
    if not own:
        pytest.skip("this machine has no non-loopback IPv4 address")
    debian = "127.0.0.1 localhost\n127.0.1.1 node01.example node01\n"
    assert _node_ip_with_hosts(tmp, debian) in own
    assert _node_ip_with_hosts(tmp, "127.0.0.1 localhost node01\n") in own
    assert (
        _node_ip_with_hosts(tmp, "127.0.0.1 localhost\n10.11.12.13 node01.example node01\n") == "10.11.12.13"
    )
    # without `ip` (minimal images): the interface addresses of `hostname -I`
    no_ip = tmp / "bin"
    no_ip.mkdir()
    (no_ip / "ip").write_text("#!/bin/sh\nexit 127\n")
    (no_ip / "ip").chmod(0o755)
    assert _node_ip_with_hosts(tmp, debian, path_env=f"{no_ip}:{os.environ['PATH']}") in own


def test_slurm_head_binds_a_routable_address_and_declares_cpu_0():
    path = CLUSTER / "slurm" / "mrmp-sweep.sbatch"
    code = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    assert not any("hostname --ip-address" in line for line in code), "it is 127.0.1.1 on many hosts"
    assert re.search(r"^HEAD_IP=\$\{HEAD_IP:-\$\(cluster/node-ip\.sh\)\}", path.read_text(), re.M)
    (head,) = [c for c in _logical_lines(path) if re.match(r"\s*srun .*ray start --head", c)]
    assert _flag(head, "node-ip-address") == "$HEAD_IP"
    # docs/cluster.md: "On the head, the recipes declare CPU: 0"
    assert "declare `CPU: 0`" in (ROOT / "docs" / "cluster.md").read_text()
    for flag, var in (("num-cpus", "HEAD_CPUS"), ("num-gpus", "HEAD_GPUS")):
        assert _flag(head, flag) == f"${var}" and _script_default(path, var) == "0", flag
    (mlflow,) = [c for c in _logical_lines(path) if "cluster/mlflow/server.sh start" in c]
    assert _flag(mlflow, "host") == "$HEAD_IP"


def test_every_cloud_recipe_head_declares_cpu_0():
    (cfg,) = _docs(CLUSTER / "ray-up" / "aws.yaml")
    assert cfg["available_node_types"][cfg["head_node_type"]]["resources"] == {"CPU": 0}
    (start,) = [c for c in cfg["head_start_ray_commands"] if "ray start --head" in c]
    assert _flag(start, "num-cpus") == "0"
    for _, spec in _cluster_specs():
        assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"


def test_ray_up_environment_reaches_every_shell():
    """Token auth and the zero-GPU override are the containers' environment (docker run --env), so `ray exec`,
    `ray attach` and job shells have them, not only the start commands."""
    (cfg,) = _docs(CLUSTER / "ray-up" / "aws.yaml")
    env = {}
    for option in cfg["docker"]["run_options"]:
        argv = shlex.split(option)
        if argv[0] in ("--env", "-e"):
            key, value = argv[1].split("=", 1)
            env[key] = value
    assert env == {"RAY_AUTH_MODE": "token", "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "1"}
    for command in cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"]:
        assert "RAY_AUTH_MODE" not in command, "one place sets the environment: docker.run_options"


def test_dashboard_binding_matches_the_docs():
    """docs/cluster.md: the dashboard (the Jobs API runs code on the cluster) listens on the head's loopback and
    is reached through a tunnel; in Kubernetes on the pod's cluster-internal address behind a ClusterIP Service."""
    (cfg,) = _docs(CLUSTER / "ray-up" / "aws.yaml")
    (start,) = [c for c in cfg["head_start_ray_commands"] if "ray start --head" in c]
    assert _flag(start, "dashboard-host") == "127.0.0.1"
    (head,) = [c for c in _logical_lines(CLUSTER / "slurm" / "mrmp-sweep.sbatch") if "ray start --head" in c]
    assert _flag(head, "dashboard-host") == "127.0.0.1"
    local = CLUSTER / "local" / "start.sh"
    (head,) = [c for c in _logical_lines(local) if "start_and_wait head" in c]
    assert _flag(head, "dashboard-host") == "$IP" and re.search(r"^IP=127\.0\.0\.2$", local.read_text(), re.M)
    for path, spec in _cluster_specs():
        head = spec["headGroupSpec"]
        assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0" and head["serviceType"] == "ClusterIP", (
            path
        )
    docs = (ROOT / "docs" / "cluster.md").read_text()
    assert "--dashboard-host=127.0.0.1" in docs


def _server_argv(tmp_path: Path, *args: str) -> list[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = subprocess.run(
        [str(CLUSTER / "mlflow" / "server.sh"), "start", "--dry-run", "--dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_mlflow_server_allows_the_host_it_binds(tmp_path):
    """MLflow 3 answers 403 to a Host header it does not know, and --allowed-hosts replaces its default list:
    server.sh allows the address it binds (given, or cluster/node-ip.sh's), with and without the port."""
    for args in (["--host", "127.0.0.5", "--port", "5123"], ["--port", "5000"]):
        argv = _server_argv(tmp_path, *args)
        host, port = argv[argv.index("--host") + 1], argv[argv.index("--port") + 1]
        allowed = argv[argv.index("--allowed-hosts") + 1].split(",")
        assert {host, f"{host}:{port}"} <= set(allowed), allowed
        if "--host" not in args:
            assert not host.startswith("127."), f"the default bind address is never loopback: {host}"
    argv = _server_argv(tmp_path, "--host", "10.0.0.9", "--allowed-hosts", "mrmp-mlflow*")
    assert "mrmp-mlflow*" in argv[argv.index("--allowed-hosts") + 1].split(",")
    # Kubernetes: bound to the pod's address, reached through the Service by name
    for path, spec in _cluster_specs():
        (server,) = [
            c for c in spec["headGroupSpec"]["template"]["spec"]["containers"] if c["name"] == "mlflow"
        ]
        line = " ".join(server["args"])
        allowed = _flag(line, "allowed-hosts").split(",")
        port = _flag(line, "port")
        services = [d["metadata"]["name"] for d in _docs(path) if d.get("kind") == "Service"]
        assert services and all(f"{s}:{port}" in allowed for s in services), (path, allowed)
        assert f"$(POD_IP):{port}" in allowed, path
