"""deploy/docker-compose.yml read as data: the RaceLab services, their environment, and the settings fields that
``RACELAB_*`` names stand for (``RACELAB_BROKER__SESSION_TIMEOUT_MS`` is ``Settings.broker.session_timeout_ms``)."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

import deploy
from runtime.settings import ENV_PREFIX, Settings

DEPLOY = Path(deploy.__file__).parent
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / "racelab.env.example"
ROLES = ("producers", "processors", "sink", "archiver", "api")


def load_compose() -> dict[str, Any]:
    """The compose file as the YAML loader gives it (anchors and ``<<`` merges resolved)."""
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def racelab_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the RaceLab image (``build`` from deploy/Dockerfile)."""
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a mapping (compose allows a mapping or a list of ``NAME=value``)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: "" if value is None else str(value) for name, value in env.items()}


def env_file_lines(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of an env file (comments and blank lines skipped)."""
    pairs = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The settings group a field holds (``X | None`` unwrapped), or None for a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [m for m in map(_model_of, typing.get_args(annotation)) if m is not None]
        return models[0] if len(models) == 1 else None
    return None


def settings_field(name: str) -> tuple[str, ...] | None:
    """The path of fields a ``RACELAB_*`` variable sets (``("broker", "idempotence")``), or None if it sets none.

    As pydantic-settings reads it: the prefix, then field names in any case, one per nesting level, joined by
    ``__``. A name that stops at a group (``RACELAB_BROKER``, a JSON value) is a field too; one that goes below a
    plain value or names no field is not.
    """
    if not name.upper().startswith(ENV_PREFIX):
        return None
    parts = name[len(ENV_PREFIX) :].lower().split("__")
    model: type[BaseModel] | None = Settings
    path: list[str] = []
    for part in parts:
        if model is None or part not in model.model_fields:
            return None
        path.append(part)
        model = _model_of(model.model_fields[part].annotation)
    return tuple(path)
