"""The image's install steps, run here without Docker: deploy/Dockerfile's build stage on a copy of what it copies
(filtered by its .dockerignore), its runtime stage's install step into a fresh folder, then the installed
``racelab`` is run the ways the containers run it, and the image's HEALTHCHECK command asks a real
``racelab run api`` from inside a PID namespace where that process is PID 1, as in a container.

The steps are the Dockerfile's own RUN lines, with the container paths (/src, /dist, /opt/racelab) mapped to
folders of the test. One difference: the image installs with pip's cache off (PIP_NO_CACHE_DIR); the test keeps
pip's cache under RACELAB_HOME so that a second run does not download every dependency again.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.healthcheck import first_process_argv, role_of
from runtime.settings import Settings, default_home
from tests.compose import environment, load_compose, racelab_services
from tests.dockerfile import DEPLOY, Instruction, Stage, ignore_patterns, in_context, parse

from .conftest import pipeline_env

pytestmark = pytest.mark.integration
REPO = DEPLOY.parent
KEY = "image-test-ingestion-key-0b7e"
PACKAGES = ("schemas", "runtime", "producers", "processors", "sinks", "deploy", "racelab")
ROLE_MODULES = {
    "producers": "producers.service",
    "processors": "processors.app",
    "sink": "sinks.agent",
    "archiver": "sinks.archiver",
    "api": "racelab.api.server",
    "migrate": "sinks.migrate",
    "healthcheck": "deploy.healthcheck",
}


@dataclass(frozen=True)
class Installed:
    """The installed environment (the image's /opt/racelab) and a home for running it."""

    prefix: Path
    home: Path

    @property
    def site_packages(self) -> Path:
        (found,) = self.prefix.glob("lib/python3.*/site-packages")
        return found

    def env(self, **extra: str) -> dict[str, str]:
        """The image's environment: its PATH first, RACELAB_HOME writable, nothing of this checkout's settings."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("RACELAB_", "PYTHON", "VIRTUAL_ENV"))}
        path = f"{self.prefix / 'bin'}:/usr/bin:/bin"
        return {**base, "PATH": path, "HOME": str(self.home), "RACELAB_HOME": str(self.home), **extra}


def _stage_env(stage: Stage, before: Instruction) -> dict[str, str]:
    """The ENV a RUN step sees: what the stage set before it."""
    env: dict[str, str] = {}
    for instruction in stage.instructions[: stage.instructions.index(before)]:
        if instruction.keyword == "ENV":
            env.update(word.split("=", 1) for word in shlex.split(instruction.args))
    env.pop("PIP_NO_CACHE_DIR", None)  # the one difference (see the module's text)
    return env


def _run(words: list[str], mapping: dict[str, Path], *, cwd: Path, env: dict[str, str]) -> None:
    command = [str(mapping.get(word, word)) for word in words]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=540)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def _copy_into_context(sources: list[str], root: Path) -> None:
    """COPY of the build stage (each source to the same path under WORKDIR): the files the context keeps."""
    patterns = ignore_patterns()
    for source in sources:
        path = REPO / source
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            relative = file.relative_to(REPO).as_posix()
            if in_context(relative, patterns):
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, root / relative)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """deploy/Dockerfile's two stages, run on this machine into folders of the test."""
    build, runtime = parse()
    root = tmp_path_factory.mktemp("image")
    src, dist, prefix, home = root / "src", root / "dist", root / "opt-racelab", root / "home"
    home.mkdir()
    base_env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",  # python3 of the version the base image has
        "HOME": str(home),
        "PIP_CACHE_DIR": str(default_home() / "cache" / "pip"),
    }

    assert build.one("WORKDIR").args == "/src"
    for copy in build.all("COPY"):
        *sources, target = shlex.split(copy.args)
        assert target == "./" or [target] == sources, copy.args
        _copy_into_context(sources, src)
    assert not (src / "deploy" / "secrets").exists()
    (run,) = build.all("RUN")
    _run(shlex.split(run.args), {"/src": src, "/dist": dist}, cwd=src, env={**base_env, **_stage_env(build, run)})

    (install,) = [r for r in runtime.all("RUN") if "install.sh" in r.args]
    mounts = [dict(part.split("=", 1) for part in mount.split(",")) for mount in install.flags["mount"]]
    mapping: dict[str, Path] = {}
    for mount in mounts:
        if mount.get("from") == "build":
            assert mount["source"] == "/dist"
            mapping[mount["target"]] = dist
        else:
            assert in_context(mount["source"], ignore_patterns())
            mapping[mount["target"]] = REPO / mount["source"]
    mapping["/opt/racelab"] = prefix
    _run(shlex.split(install.args), mapping, cwd=root, env={**base_env, **_stage_env(runtime, install)})
    return Installed(prefix, home)


def _racelab(installed: Installed, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(installed.prefix / "bin" / "racelab"), *args],
        cwd=installed.home,
        env=installed.env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_installed_command_starts_and_offers_every_role(installed: Installed):
    done = _racelab(installed, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: racelab")
    done = _racelab(installed, "run", "--help")
    assert done.returncode == 0, done.stderr
    assert "{producers,processors,sink,archiver,api,all}" in done.stdout


IMPORT_ALL = """
import importlib, pkgutil, sys
roles = {roles!r}
for role, name in roles.items():
    module = importlib.import_module(name)
    print("role", role, module.__file__)
count = 0
for top in {packages!r}:
    package = importlib.import_module(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        importlib.import_module(info.name)
        count += 1
print("modules", count)
for tool in ("pytest", "hypothesis", "mypy", "ruff", "schemathesis", "testcontainers", "yaml"):
    try:
        importlib.import_module(tool)
    except ImportError:
        continue
    print("dev tool", tool)
"""


def test_every_role_imports_from_the_installed_wheel_without_development_tools(installed: Installed):
    script = IMPORT_ALL.format(roles=ROLE_MODULES, packages=PACKAGES)
    done = subprocess.run(
        [str(installed.prefix / "bin" / "python"), "-c", script],
        cwd=installed.home,
        env=installed.env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    roles = {line.split()[1]: Path(line.split()[2]) for line in lines if line.startswith("role ")}
    assert set(roles) == set(ROLE_MODULES)
    assert all(path.is_relative_to(installed.site_packages) for path in roles.values()), roles
    (count,) = [int(line.split()[1]) for line in lines if line.startswith("modules ")]
    source_modules = [p for top in PACKAGES for p in (REPO / top).rglob("*.py") if "__pycache__" not in p.parts]
    assert count == len(source_modules) - len(PACKAGES)  # every module but the top-level __init__s, walked
    assert [line for line in lines if line.startswith("dev tool")] == []


def test_the_package_data_is_installed_as_in_the_source(installed: Installed):
    """Every file pyproject's package-data names (the migrations the sink applies, the deploy files) is there."""
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    expected = sorted(
        file.relative_to(REPO)
        for package, patterns in package_data.items()
        for pattern in patterns
        for file in (REPO / package).glob(pattern)
        if file.is_file()
    )
    migrations = [p for p in expected if p.parts[0] == "sinks" and p.suffix == ".sql"]
    assert len(migrations) == len(list((REPO / "sinks" / "migrations").glob("*.sql"))) >= 5
    assert Path("deploy/prometheus/rules.yml") in expected
    for relative in expected:
        installed_file = installed.site_packages / relative
        assert installed_file.is_file(), relative
        assert installed_file.read_bytes() == (REPO / relative).read_bytes(), relative


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _first_process(unshare_pid: int) -> tuple[int, list[str]]:
    """The process unshare started (PID 1 of the new namespace) by its PID here, and its command line."""
    (child,) = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
    return int(child), first_process_argv(Path(f"/proc/{child}/cmdline"))


async def _healthcheck_in(pid: int, installed: Installed, env: dict[str, str]) -> tuple[int, str]:
    """The Dockerfile's HEALTHCHECK command, run in the PID and mount namespaces of ``pid`` (what docker exec does)."""
    _, runtime = parse()
    words = json.loads(runtime.one("HEALTHCHECK").args.removeprefix("CMD "))
    assert words == ["python", "-m", "deploy.healthcheck"]  # `python` on the image's PATH: the installed one
    process = await asyncio.create_subprocess_exec(
        "nsenter",
        f"--target={pid}",
        "--pid",
        "--mount",
        *words,
        cwd=installed.home,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode()


@pytest.mark.skipif(os.geteuid() != 0, reason="a PID namespace (unshare --pid) needs root")
async def test_the_image_health_check_asks_the_running_role_in_its_container(
    installed: Installed, settings: Settings, db_schema: str
):
    port = _free_port()
    nowhere = f"http://127.0.0.1:{_free_port()}"  # the data.go.kr clients point here: nothing leaves this machine
    env = installed.env(
        **{
            # the container's environment from the compose file (every interface, the system clock, no live odds)
            **environment(racelab_services(load_compose())["api"]),
            # on this test's broker, database and topics: a single broker holds one replica
            **{k: v for k, v in pipeline_env(settings).items() if k.startswith("RACELAB_")},
            "RACELAB_TOPICS__REPLICATION_FACTOR": "1",
            "RACELAB_KRA__BASE_URL": f"{nowhere}/B551015",
            "RACELAB_KSPO__BASE_URL": f"{nowhere}/B551014",
            "RACELAB_API__INGESTION_KEY": KEY,
            "RACELAB_API__PORT": str(port),
        }
    )
    assert env["RACELAB_API__HOST"] == "0.0.0.0"  # noqa: S104
    assert env["RACELAB_PRODUCERS__CLOCK"] == "system"
    container = await asyncio.create_subprocess_exec(
        "unshare",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        "racelab",
        "run",
        "api",
        cwd=installed.home,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    lines: list[str] = []
    try:
        assert container.stderr is not None
        async with asyncio.timeout(90):
            while not any("control API on" in line for line in lines):
                line = (await container.stderr.readline()).decode()
                assert line, "racelab run api ended before listening:\n" + "".join(lines)
                lines.append(line)
        first, argv = _first_process(container.pid)
        assert role_of(argv) == "api", argv

        code, out = await _healthcheck_in(first, installed, env)
        assert code == 0, out
        assert out.strip() == f"api: http://127.0.0.1:{port}/healthz answered 200"

        # the same check where nothing listens: unhealthy, and it says so
        code, out = await _healthcheck_in(first, installed, {**env, "RACELAB_API__PORT": str(_free_port())})
        assert code == 1
        assert re.fullmatch(r"api: http://127\.0\.0\.1:\d+/healthz did not answer \(.+\)", out.strip()), out

        # docker stop: SIGTERM to the first process, which stops by itself (no SIGKILL needed)
        os.kill(first, signal.SIGTERM)
        assert await asyncio.wait_for(container.wait(), 30) == 0
    finally:
        if container.returncode is None:
            container.kill()  # unshare --kill-child takes racelab with it
            await container.wait()
