"""deploy/: the image, the Docker Compose file and the Kubernetes manifests, checked without a container engine or
a cluster. Every file parses, the image tags follow the locust pin, each deployment's master and worker commands
are what it needs, every path they name exists, and those very command lines, put together the way Compose and
each operator put them together, drive a real distributed run against the demo chatbot on loopback."""

from __future__ import annotations

import ast
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from demobot.launcher import DemobotProcess
from tests.conftest import ROOT, clean_env, free_port

DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
OFFICIAL = DEPLOY / "k8s" / "locusttest.official.yaml"
COMMUNITY = DEPLOY / "k8s" / "locusttest.community.yaml"
MAKE_CONFIGMAP = DEPLOY / "k8s" / "make_configmap.sh"

COMMUNITY_MANAGED_FLAGS = (
    "--master",
    "--worker",
    "--master-port",
    "--master-host",
    "--expect-workers",
    "--autostart",
    "--autoquit",
    "--enable-rebalancing",
    "--only-summary",
)
"""Flags the community operator adds itself (internal/resources/command.go); commands must not repeat them."""

SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|ACCESS_KEY", re.IGNORECASE)
REPO_PATH = re.compile(r"(?<![\w/.$-])(?:deploy|config|docs|tests)/[\w.-]+(?:/[\w.-]+)*")


def locust_pin() -> str:
    """The locust version pinned in requirements.txt."""
    pins = re.findall(r"^locust==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert len(pins) == 1, pins
    return pins[0]


def load_one(path: Path) -> dict[str, Any]:
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert len(documents) == 1, f"{path}: expected one YAML document, found {len(documents)}"
    return documents[0]


def interpolate(text: str, values: dict[str, str]) -> str:
    """Compose's ${NAME:-default}, with values in place of the shell's environment."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda match: values.get(match[1], match[2]), text)


def option(args: list[str], flag: str) -> str:
    """The value after the last ``flag`` (or in ``flag=value``) in a command line."""
    values = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == flag]
    values += [arg.split("=", 1)[1] for arg in args if arg.startswith(flag + "=")]
    assert values, f"{flag} missing from {args}"
    return values[-1]


def assert_no_inline_secret(name: str, item: dict[str, Any], where: str) -> None:
    assert not (SECRET_NAME.search(name) and "value" in item), f"{where}: {name} is set inline; use a Secret"


def compose_services(test_type: str = "load", workers: int = 4) -> dict[str, dict[str, Any]]:
    """The compose services with TEST_TYPE and WORKERS filled in as Compose would."""
    values = {"TEST_TYPE": test_type, "WORKERS": str(workers)}
    services = load_one(COMPOSE)["services"]
    for service in services.values():
        service["command"] = [interpolate(str(arg), values) for arg in service["command"]]
    return services


# How each deployment turns its file into master and worker command lines (after the image's `locust`).


def compose_command_lines() -> tuple[list[str], list[str]]:
    services = compose_services()
    return services["master"]["command"], services["worker"]["command"]


def official_command_lines() -> tuple[list[str], list[str]]:
    """As locustio/k8s-operator's objects.py builds them: one shared `args` string behind the role flags."""
    spec = load_one(OFFICIAL)
    args = shlex.split(spec["spec"]["args"])
    return ["--master", *args], ["--worker", "--master-host", f"{spec['metadata']['name']}-master", *args]


def community_command_lines() -> tuple[list[str], list[str]]:
    """As the community operator's command.go builds them: each role's command, then the operator's flags."""
    test = load_one(COMMUNITY)
    spec, name = test["spec"], test["metadata"]["name"]
    master = [
        *spec["master"]["command"].split(),
        "--master",
        "--master-port=5557",
        f"--expect-workers={spec['worker']['replicas']}",
        "--autostart",
        "--autoquit",
        "60",
        "--enable-rebalancing",
        "--only-summary",
    ]
    worker = [*spec["worker"]["command"].split(), "--worker", "--master-port=5557", f"--master-host={name}-master"]
    return master, worker


DEPLOYMENTS: dict[str, Callable[[], tuple[list[str], list[str]]]] = {
    "compose": compose_command_lines,
    "official-operator": official_command_lines,
    "community-operator": community_command_lines,
}


def test_every_yaml_file_under_deploy_parses() -> None:
    files = sorted([*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")])
    assert {COMPOSE, OFFICIAL, COMMUNITY} <= set(files)
    for path in files:
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        assert documents and all(isinstance(doc, dict) for doc in documents), path


def test_image_tags_follow_the_locust_pin() -> None:
    pin = locust_pin()
    dockerfile = DOCKERFILE.read_text()
    assert re.search(rf"^ARG LOCUST_VERSION={re.escape(pin)}$", dockerfile, re.MULTILINE), "Dockerfile ARG"
    assert re.search(r"^FROM locustio/locust:\$\{LOCUST_VERSION\}$", dockerfile, re.MULTILINE), "Dockerfile FROM"
    for name, service in compose_services().items():
        assert service["build"]["args"]["LOCUST_VERSION"] == pin, name
        assert service["image"].endswith(f":{pin}"), name
    images = [load_one(path)["spec"]["image"] for path in (OFFICIAL, COMMUNITY)]
    images.append(load_one(DEPLOY / "k8s" / "reports-reader.yaml")["spec"]["containers"][0]["image"])
    assert all(image.endswith(f":{pin}") for image in images), images


def test_compose_runs_a_headless_master_and_workers_that_find_it() -> None:
    services = compose_services(workers=6)
    assert set(services) == {"master", "worker"}
    master, worker = services["master"]["command"], services["worker"]["command"]
    assert {"--master", "--headless"} <= set(master) and "--worker" not in master
    assert option(master, "--expect-workers") == "6"  # WORKERS, the same N as --scale worker=N
    assert "--worker" in worker and option(worker, "--master-host") == "master"
    assert option(master, "--config") == option(worker, "--config") == "config/load.conf"
    assert option(master, "--locustfile") == option(worker, "--locustfile") == "locustfile.py"
    assert option(compose_services("stress")["master"]["command"], "--config") == "config/stress.conf"
    assert "/home/locust/reports" in {volume.split(":")[1] for volume in services["master"]["volumes"]}
    for name, service in services.items():
        assert (COMPOSE.parent / service["build"]["context"]).resolve() == ROOT, name
        assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
        env_files = [(COMPOSE.parent / entry["path"]).resolve() for entry in service["env_file"]]
        assert env_files == [ROOT / ".env"], name  # the git-ignored .env holds the target and the secrets
        for key, value in (service.get("environment") or {}).items():
            assert_no_inline_secret(key, {"value": value}, f"compose {name}")


def test_official_locusttest_has_what_its_crd_requires_and_nothing_else() -> None:
    test = load_one(OFFICIAL)
    assert (test["apiVersion"], test["kind"]) == ("locust.io/v1", "LocustTest")
    spec = test["spec"]
    allowed = {"annotations", "labels", "image", "imagePullPolicy", "imagePullSecrets", "workers", "args", "env"}
    assert set(spec) <= allowed | {"master", "worker", "metrics"}, set(spec) - allowed
    assert "locustfile" not in spec  # its ConfigMap would be mounted over /home/locust and hide the suite
    assert isinstance(spec["workers"], int) and spec["workers"] >= 1 and spec["image"]
    args = shlex.split(spec["args"])
    assert "--headless" in args and int(option(args, "--expect-workers")) == spec["workers"]
    assert not {"--master", "--worker", "--master-host"} & set(args)  # the operator adds the role flags
    for role in ("master", "worker"):
        assert set(spec.get(role, {})) <= {"labels", "annotations", "resources"}, role
    for item in spec.get("env", []):
        assert set(item) <= {"name", "value"}, item  # the CRD has no valueFrom: no Secret can be read
        assert_no_inline_secret(item["name"], item, "official LocustTest")


def test_community_locusttest_has_what_its_crd_requires() -> None:
    test = load_one(COMMUNITY)
    assert (test["apiVersion"], test["kind"]) == ("locust.io/v2", "LocustTest")
    assert len(test["metadata"]["name"]) <= 56  # the operator's webhook: "<name>-worker" fits 63 characters
    spec = test["spec"]
    assert spec["image"] and 1 <= spec["worker"]["replicas"] <= 500
    assert set(spec["master"]) <= {"command", "resources", "labels", "annotations", "autostart", "autoquit"}
    assert set(spec["worker"]) <= {"command", "replicas", "resources", "labels", "annotations"}
    master, worker = spec["master"]["command"].split(), spec["worker"]["command"].split()
    for command in (master, worker):
        assert not [arg for arg in command if arg.split("=")[0] in COMMUNITY_MANAGED_FLAGS], command
    assert "--headless" in master and option(master, "--config") == option(worker, "--config")

    files = spec["testFiles"]
    assert files["configMapRef"] == "chatswarm-config"  # make_configmap.sh's default name
    assert files["srcMountPath"] == "/home/locust/config"  # over the image's config/ (WORKDIR /home/locust)
    assert [ref["name"] for ref in spec["env"]["secretRefs"]] == ["chatswarm-secrets"]
    for item in spec["env"].get("variables", []):
        assert_no_inline_secret(item["name"], item, "community LocustTest")

    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    reserved = [files["srcMountPath"], files.get("libMountPath", "/opt/locust/lib")]
    for mount in spec["volumeMounts"]:
        assert mount["name"] in volumes and mount.get("target", "both") in {"master", "worker", "both"}, mount
        for path in reserved:  # the operator refuses mounts on or under the test-file mounts, and vice versa
            assert not (mount["mountPath"] + "/").startswith(path + "/") and not (path + "/").startswith(
                mount["mountPath"] + "/"
            ), (mount, path)
    reports = next(mount for mount in spec["volumeMounts"] if mount["mountPath"] == "/home/locust/reports")
    assert reports["target"] == "master"
    claim = volumes[reports["name"]]["persistentVolumeClaim"]["claimName"]
    assert claim == load_one(DEPLOY / "k8s" / "reports-pvc.yaml")["metadata"]["name"]


def test_every_path_the_deploy_files_name_exists() -> None:
    copied = re.findall(r"^COPY (?:--chown=\S+ )?(.+) \S+$", DOCKERFILE.read_text(), re.MULTILINE)
    sources = [source for line in copied for source in line.split()]
    assert sources and not {".", "./", ".env"} & set(sources), sources  # never the whole checkout or secrets
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[[line.startswith("#") for line in ignore].index(False)] == "*"  # allow-list: .env stays out
    sources += [line[1:] for line in ignore if line.startswith("!")]
    for source in sources:
        assert (ROOT / source).exists(), f"Dockerfile: {source}"

    for name, service in compose_services().items():
        for volume in service["volumes"]:
            assert (COMPOSE.parent / volume.split(":")[0]).exists(), f"compose {name}: {volume}"
    for deployment, command_lines in DEPLOYMENTS.items():
        for command in command_lines():
            for flag in ("--locustfile", "--config"):
                assert (ROOT / option(command, flag)).is_file(), f"{deployment}: {flag} {option(command, flag)}"

    guide = ROOT / "docs" / "DISTRIBUTED.md"  # which also cites files of other repositories under docs/
    for path in [*sorted(p for p in DEPLOY.rglob("*") if p.is_file()), guide]:
        for mention in (found.rstrip(".") for found in REPO_PATH.findall(path.read_text())):
            if path != guide or mention.startswith(("deploy/", "config/")):
                assert (ROOT / mention).exists(), f"{path.relative_to(ROOT)} names {mention}, which does not exist"


def test_the_image_holds_every_local_module_the_suite_imports() -> None:
    """Whatever locustfile.py imports from this checkout, directly or through its packages, is copied in."""
    copied = {
        Path(source).parts[0]
        for line in re.findall(r"^COPY (?:--chown=\S+ )?(.+) \S+$", DOCKERFILE.read_text(), re.MULTILINE)
        for source in line.split()
        if not source.startswith("requirements")
    }
    todo, seen, needed = [ROOT / "locustfile.py"], set(), set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for name in names:
                top = name.split(".")[0]
                if (ROOT / top).is_dir() or (ROOT / f"{top}.py").is_file():
                    needed.add(top if (ROOT / top).is_dir() else f"{top}.py")
                    todo += (ROOT / top).rglob("*.py") if (ROOT / top).is_dir() else [ROOT / f"{top}.py"]
    assert {"users", "plugins", "shapes"} <= needed, needed
    assert needed <= copied, f"the Dockerfile does not copy {sorted(needed - copied)}"


DeploymentRun = tuple[list[int], list[str], Path]
"""Exit codes (master first), outputs, and the folder that holds the run folder."""


def run_deployment(deployment: str, target: str, folder: Path) -> DeploymentRun:
    """The master and worker command lines as the deployment builds them, in real processes on loopback (the
    master's address and port, the worker count and a short run time swapped in at the end, where they win)."""
    master_args, worker_args = DEPLOYMENTS[deployment]()
    port, workers, report_dir = str(free_port()), 2, folder / "run"
    locust = [sys.executable, "-m", "locust"]
    master_args += ["--master-bind-host", "127.0.0.1", "--master-bind-port", port, "--expect-workers", str(workers)]
    # 10 s from the moment both workers joined: at least two of their 3-second stats reports reach the master
    # even when the machine is slow, so totals cannot come out empty for want of time.
    master_args += ["--expect-workers-max-wait", "60", "--run-time", "10s", "--report-dir", str(report_dir)]
    worker_args += ["--master-host", "127.0.0.1", "--master-port", port]
    env = clean_env(CHATBOT_URL=target)  # the target comes from CHATBOT_URL, as from .env or a Secret
    options: dict[str, Any] = {"cwd": ROOT, "env": env, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
    processes = [subprocess.Popen([*locust, *master_args], text=True, **options)]
    processes += [subprocess.Popen([*locust, *worker_args], text=True, **options) for _ in range(workers)]
    try:
        outputs = [process.communicate(timeout=120)[0] for process in processes]
    finally:
        for process in processes:
            process.kill()
    return [process.returncode for process in processes], outputs, folder


@pytest.fixture(scope="module")
def target() -> Iterator[DemobotProcess]:
    with DemobotProcess() as bot:
        yield bot


@pytest.mark.startup
@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_deployment_command_lines_run_a_distributed_test(
    deployment: str, target: DemobotProcess, tmp_path: Path
) -> None:
    codes, outputs, folder = run_deployment(deployment, target.url, tmp_path)
    assert codes == [0, 0, 0], f"exit codes {codes}\n{outputs[0][-3000:]}\n{outputs[1][-1500:]}"
    summary = json.loads((folder / "run" / "summary.json").read_text())
    assert summary["host"] == target.url and summary["totals"]["count"] > 0, summary["totals"]
    assert summary["totals"]["failures"] == 0, summary["failures"]
    assert [path.name for path in folder.iterdir()] == ["run"]  # one run folder, the master's


def test_make_configmap_refuses_folders_a_configmap_cannot_hold(tmp_path: Path) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "prompts.jsonl").write_text("{}\n")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "accounts.csv").write_text("email,password\na@example.com,hunter2\n")
    for folder, problem in ((tmp_path, "a ConfigMap holds one flat folder"), (tmp_path / "secrets", "a Secret")):
        result = subprocess.run([MAKE_CONFIGMAP, "x", folder], capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and result.stdout == "", result
        assert result.stderr.startswith("chatswarm: error: ") and problem in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and "hunter2" not in result.stderr


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed here")
def test_make_configmap_prints_the_test_types(tmp_path: Path) -> None:
    result = subprocess.run([MAKE_CONFIGMAP], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    configmap = yaml.safe_load(result.stdout)
    assert (configmap["kind"], configmap["metadata"]["name"]) == ("ConfigMap", "chatswarm-config")
    assert sorted(configmap["data"]) == sorted(path.name for path in (ROOT / "config").glob("*.conf"))
    assert configmap["data"]["load.conf"] == (ROOT / "config" / "load.conf").read_text()


def test_docker_compose_accepts_the_compose_file() -> None:
    try:
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        pytest.skip("docker is not installed here, so `docker compose config` cannot check the file")
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"])[0]
        pytest.skip(f"docker compose is not installed here ({reason})")
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
