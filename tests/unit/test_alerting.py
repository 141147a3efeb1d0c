"""Alertmanager as a tool of the stack (where its binaries are, how the extracted server finds its templates) and the
shipped alerting configuration read as data: what it names exists in the rules, the compose file and git's ignores."""

from __future__ import annotations

import fnmatch
import stat
from pathlib import Path

import pytest
import yaml

from deploy.stack import alertmanager
from deploy.stack.alertmanager import (
    RELATIVE_TEMPLATES_DIR,
    TEMPLATES_DIR,
    AlertmanagerBinaries,
    AlertmanagerInstall,
    AlertmanagerServer,
    relocate_templates,
)
from deploy.stack.errors import StackError
from deploy.stack.manager import tool_status
from tests.promql import CONFIG_FILE, DEPLOY, RULES_FILE

ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
VERSION_SCRIPT = "#!/bin/sh\necho 'alertmanager, version 0.25.0 (branch: debian/sid, revision: 0.25.0-1+b4)'\n"


def _binary(path: Path, text: str = VERSION_SCRIPT, *, executable: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755 if executable else 0o644)
    return path


def test_relocated_server_names_its_template_folder_relative_to_where_it_runs(tmp_path: Path):
    server = tmp_path / "prometheus-alertmanager"
    original = b"\x7fELF..bytes/usr/share/prometheus/alertmanager3552..%s)/usr/share/prometheus/alertmanager/ui/11.."
    server.write_bytes(original)
    server.chmod(0o751)
    relocate_templates(server)
    patched = server.read_bytes()
    assert patched == original.replace(
        b"/usr/share/prometheus/alertmanager", b"usr/share/prometheus//alertmanager"
    )  # same length: every other byte stays where it was
    assert len(TEMPLATES_DIR) == len(RELATIVE_TEMPLATES_DIR)
    assert stat.S_IMODE(server.stat().st_mode) == 0o751
    relocate_templates(server)  # once is enough: nothing absolute is left to rewrite
    assert server.read_bytes() == patched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prometheus-alertmanager"]


def test_a_server_with_templates_compiled_in_is_left_alone(tmp_path: Path):
    server = tmp_path / "alertmanager"
    server.write_bytes(b"\x7fELF..no such folder..")
    relocate_templates(server)
    assert server.read_bytes() == b"\x7fELF..no such folder.."


def test_debian_and_upstream_server_names_are_found_with_amtool(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    assert AlertmanagerBinaries.in_folder(bin_dir) is None
    _binary(bin_dir / "alertmanager")
    assert AlertmanagerBinaries.in_folder(bin_dir) is None  # no amtool
    _binary(bin_dir / "amtool")
    assert AlertmanagerBinaries.in_folder(bin_dir) == AlertmanagerBinaries(bin_dir / "alertmanager", bin_dir / "amtool")
    _binary(bin_dir / "prometheus-alertmanager")
    found = AlertmanagerBinaries.in_folder(bin_dir, workdir=tmp_path)
    assert found == AlertmanagerBinaries(bin_dir / "prometheus-alertmanager", bin_dir / "amtool", tmp_path)


def test_binaries_that_are_not_executable_do_not_count(tmp_path: Path):
    _binary(tmp_path / "prometheus-alertmanager", executable=False)
    _binary(tmp_path / "amtool")
    assert AlertmanagerBinaries.in_folder(tmp_path) is None


def test_extracted_package_is_found_and_runs_in_its_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(alertmanager, "SYSTEM_BIN", tmp_path / "empty")
    install = AlertmanagerInstall(tmp_path)
    assert install.located() is None
    with pytest.raises(StackError, match="racelab stack up"):
        alertmanager.alertmanager_binaries(tmp_path)
    assert tool_status("alertmanager", None).state == "MISSING"
    _binary(install.root / "usr/bin/prometheus-alertmanager")
    _binary(install.root / "usr/bin/amtool")
    found = install.located()
    assert found is not None
    assert found.workdir == install.root == tmp_path / "alertmanager"
    assert found.version() == "0.25.0"
    assert install.ensure() == found  # nothing to fetch
    status = tool_status("alertmanager", found)
    assert (status.state, status.endpoint) == ("found", str(install.root / "usr/bin"))

    server = AlertmanagerServer(found, tmp_path / "alertmanager.yml")
    server.port = 9999
    assert server.command(tmp_path / "data") == [
        str(install.root / "usr/bin/prometheus-alertmanager"),
        f"--config.file={tmp_path / 'alertmanager.yml'}",
        f"--storage.path={tmp_path / 'data/data'}",
        "--web.listen-address=127.0.0.1:9999",
        "--cluster.listen-address=",
        "--log.level=info",
    ]
    assert server.workdir(tmp_path / "data") == install.root
    system = AlertmanagerServer(AlertmanagerBinaries(Path("/usr/bin/alertmanager"), Path("/usr/bin/amtool")), Path("x"))
    assert system.workdir(tmp_path / "data") == tmp_path / "data"


def _alert_names() -> set[str]:
    rules = yaml.safe_load(RULES_FILE.read_text())
    return {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}


def _matcher_values(matchers: list[str], label: str) -> list[str]:
    prefix = f'{label}="'
    return [m.removeprefix(prefix).removesuffix('"') for m in matchers if m.startswith(prefix)]


def test_inhibit_rules_and_routes_name_alerts_and_severities_the_rules_have():
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    names = _alert_names()
    assert len(config["inhibit_rules"]) == 3
    for inhibit in config["inhibit_rules"]:
        for side in ("source_matchers", "target_matchers"):
            (name,) = _matcher_values(inhibit[side], "alertname")
            assert name in names, name
    rules = yaml.safe_load(RULES_FILE.read_text())
    severities = {r["labels"]["severity"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    routes = config["route"]["routes"]
    assert [_matcher_values(r["matchers"], "severity") for r in routes] == [["critical"]]
    assert severities == {"warning", "critical"}
    assert config["route"]["group_by"] == ["alertname", "source"]


def test_every_alert_reaches_the_slack_receiver_and_resolves_there():
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    (receiver,) = config["receivers"]
    assert config["route"]["receiver"] == receiver["name"]
    assert all("receiver" not in route for route in config["route"]["routes"])  # children inherit it
    (slack,) = receiver["slack_configs"]
    assert slack["send_resolved"] is True
    assert "api_url" not in slack and "api_url" not in config.get("global", {})


def test_compose_gives_alertmanager_its_config_and_the_webhook_secret_file_git_ignores():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    service = compose["services"]["alertmanager"]
    config_flag = next(a for a in service["command"] if a.startswith("--config.file="))
    mounts = dict(v.split(":")[:2] for v in service["volumes"])
    assert mounts["./alertmanager"] == str(Path(config_flag.split("=", 1)[1]).parent)
    assert "./alertmanager:/etc/alertmanager:ro" in service["volumes"]

    (secret,) = service["secrets"]
    (slack,) = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())["receivers"][0]["slack_configs"]
    assert slack["api_url_file"] == f"/run/secrets/{secret}"  # where compose mounts a secret by default
    secret_file = compose["secrets"][secret]["file"]
    assert secret_file == "./secrets/slack_webhook_url"
    ignores = (DEPLOY / "secrets" / ".gitignore").read_text().splitlines()
    patterns = [line for line in ignores if line and not line.startswith("#")]
    assert patterns == ["*", "!.gitignore"]
    assert fnmatch.fnmatch(Path(secret_file).name, patterns[0])


def test_prometheus_sends_its_alerts_where_the_compose_alertmanager_listens():
    service = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]["alertmanager"]
    listen = next(a for a in service["command"] if a.startswith("--web.listen-address="))
    assert listen == "--web.listen-address=0.0.0.0:9093"  # every interface of its container
    assert "network_mode" not in service  # on the compose project's network, with Prometheus
    assert service["ports"] == ["127.0.0.1:9093:9093"]  # and on the host's loopback only
    assert "--cluster.listen-address=" in service["command"]
    alerting = yaml.safe_load(CONFIG_FILE.read_text())["alerting"]["alertmanagers"]
    assert alerting == [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]


def _fake_apt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, package: str) -> list[tuple[str, ...]]:
    """apt that 'downloads' a .deb built here with dpkg-deb (holding usr/bin/<package>) instead of asking a mirror."""
    from deploy.stack import apt

    tree = tmp_path / "deb-tree"
    _binary(tree / "usr/bin" / package, "#!/bin/sh\n# /usr/share/prometheus/alertmanager\n")
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN/control").write_text(
        f"Package: {package}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: x <x@example.org>\nDescription: x\n"
    )
    deb = tmp_path / f"{package}_1.0-1_all.deb"
    assert apt.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(deb)]).returncode == 0
    calls: list[tuple[str, ...]] = []

    def run(self: apt.PrivateApt, *args: str, cwd: Path) -> None:
        calls.append(args)
        cwd.mkdir(parents=True, exist_ok=True)
        if args[0] == "download":
            (cwd / deb.name).write_bytes(deb.read_bytes())

    monkeypatch.setattr(apt, "debian_codename", lambda component: "bookworm")
    monkeypatch.setattr(apt.PrivateApt, "configure", lambda self, kind, suite: None)
    monkeypatch.setattr(apt.PrivateApt, "run", run)
    return calls


def test_a_package_is_unpacked_prepared_and_put_in_place_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from deploy.stack.apt import unpack_debian_package

    calls = _fake_apt(monkeypatch, tmp_path, "prometheus-alertmanager")
    home = tmp_path / "home"
    seen: list[bool] = []

    def prepare(tree: Path) -> None:
        seen.append((tree / "usr/bin/prometheus-alertmanager").is_file() and not (home / "tool").exists())
        relocate_templates(tree / "usr/bin/prometheus-alertmanager")

    unpack_debian_package(
        "prometheus-alertmanager",
        home / "tool",
        cache=home / "cache/tool",
        component="alertmanager",
        log_file=home / "logs/tool.log",
        prepare=prepare,
    )
    assert calls == [("update",), ("download", "prometheus-alertmanager")]
    assert seen == [True]  # prepared before it was put in place
    assert (
        (home / "tool/usr/bin/prometheus-alertmanager").read_text().endswith("# usr/share/prometheus//alertmanager\n")
    )
    assert not (home / "cache/tool").exists()
    assert not (home / "tool.partial").exists()

    (home / "tool/usr/bin/marker").write_text("first")  # another `stack up` got there first: its tree stays
    unpack_debian_package(
        "prometheus-alertmanager", home / "tool", cache=home / "cache/tool", component="x", log_file=home / "logs/x"
    )
    assert (home / "tool/usr/bin/marker").read_text() == "first"
    assert sorted(p.name for p in home.iterdir()) == ["cache", "logs", "tool"]
