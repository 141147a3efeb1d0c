"""``racelab schemas export DIR``: JSON Schema of every normalized topic, and the topic catalogue."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.records import MESSAGE_ADAPTERS, MODELS_OF_TOPIC
from schemas.topics import TopicCatalogue


def export(directory: Path, prefix: str = "racelab") -> list[Path]:
    """Write ``<prefix>.<topic>.schema.json`` per normalized topic and ``topics.json``; returns the files."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, models in MODELS_OF_TOPIC.items():
        schema = MESSAGE_ADAPTERS[name].json_schema(mode="serialization")
        schema["$id"] = f"{prefix}.{name}"
        what = " Or: ".join((model.__doc__ or "").strip() for model in models)
        schema["description"] = what + f" Topic {prefix}.{name}, key = race id."
        path = directory / f"{prefix}.{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
        written.append(path)
    catalogue = [vars(c) for c in TopicCatalogue(prefix).contracts()]
    path = directory / "topics.json"
    path.write_text(json.dumps(catalogue, indent=2, ensure_ascii=False) + "\n")
    written.append(path)
    return written
