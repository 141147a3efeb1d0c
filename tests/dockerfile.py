"""deploy/Dockerfile and its .dockerignore read as data: instructions by stage, and which paths the context keeps.

Just enough of the Dockerfile syntax for the project's own file: comments, line continuations, ``ARG`` before the
first ``FROM``, ``FROM image AS name``, leading ``--flag=value`` options, and JSON (exec) forms. The context
matcher follows Docker's rules for ``.dockerignore``: patterns in order, the last one matching a path or one of its
parent folders wins, ``!`` re-includes, ``*`` and ``?`` stay within one path segment, ``**`` spans any number.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import deploy

DEPLOY = Path(deploy.__file__).parent
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword (upper case), its ``--flags`` and the rest of the line."""

    keyword: str
    flags: dict[str, list[str]]
    args: str

    def exec_form(self) -> list[str]:
        """The JSON array form of the arguments (``CMD ["a", "b"]``)."""
        value = json.loads(self.args)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), self.args
        return value


@dataclass(frozen=True)
class Stage:
    """A build stage: its base image (``ARG`` defaults substituted), its name and its instructions."""

    base: str
    name: str
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def one(self, keyword: str) -> Instruction:
        (found,) = self.all(keyword)
        return found


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append((current + stripped).strip())
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    return lines


def _instruction(line: str) -> Instruction:
    keyword, _, rest = line.partition(" ")
    flags: dict[str, list[str]] = {}
    words = rest.strip()
    while words.startswith("--"):
        flag, _, words = words.partition(" ")
        name, _, value = flag[2:].partition("=")
        flags.setdefault(name, []).append(value)
        words = words.strip()
    return Instruction(keyword.upper(), flags, words)


def parse(path: Path = DOCKERFILE) -> list[Stage]:
    """The stages of a Dockerfile in order."""
    defaults: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text()):
        instruction = _instruction(line)
        if instruction.keyword == "ARG" and not stages:
            name, _, value = instruction.args.partition("=")
            defaults[name] = value
        elif instruction.keyword == "FROM":
            image, *name = re.split(r"\s+as\s+", instruction.args, flags=re.I)
            image = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], image.strip())
            stages.append(Stage(image, name[0].strip() if name else str(len(stages)), []))
        elif stages:
            stages[-1].instructions.append(instruction)
    return stages


def _segment_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**", index):
            out += ".*"
            index += 2
            if pattern.startswith("/", index):  # "**/x" also matches "x" at the top
                out = out[:-2] + "(?:.*/)?"
                index += 1
        elif pattern[index] == "*":
            out += "[^/]*"
            index += 1
        elif pattern[index] == "?":
            out += "[^/]"
            index += 1
        else:
            out += re.escape(pattern[index])
            index += 1
    return re.compile(out + r"\Z")


def ignore_patterns(path: Path = DOCKERIGNORE) -> list[tuple[bool, re.Pattern[str]]]:
    """(re-include?, regex) per pattern line of a ``.dockerignore``, in order."""
    patterns = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        cleaned = line.lstrip("!").strip().strip("/")
        patterns.append((negated, _segment_regex(cleaned)))
    return patterns


def in_context(relative: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether the build context keeps the file or folder ``relative`` (a path with ``/``, from the root)."""
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negated, regex in patterns:
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negated
    return not excluded
