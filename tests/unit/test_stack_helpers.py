from pathlib import Path

import pytest

from deploy.stack.apt import debian_archive_uri
from deploy.stack.errors import StackError
from deploy.stack.process import free_port, pid_alive, port_open


def test_archive_uri_from_deb822_skips_security(tmp_path: Path):
    sources = tmp_path / "debian.sources"
    sources.write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n"
    )
    assert debian_archive_uri([sources]) == "http://mirror.example/debian"


def test_archive_uri_from_one_line_format(tmp_path: Path):
    sources = tmp_path / "sources.list"
    sources.write_text("# comment\ndeb [arch=amd64] http://mirror.example/debian bookworm main\n")
    assert debian_archive_uri([sources]) == "http://mirror.example/debian"


def test_archive_uri_missing_is_a_clear_error(tmp_path: Path):
    sources = tmp_path / "other.list"
    sources.write_text("deb https://packages.example/apt stable main\n")
    with pytest.raises(StackError, match="no Debian archive"):
        debian_archive_uri([sources])


def test_free_port_is_free_and_pids():
    port = free_port()
    assert not port_open(port)
    import os

    assert pid_alive(os.getpid())
    assert not pid_alive(None)


def test_codename_from_os_release(tmp_path: Path):
    from deploy.stack.apt import debian_codename

    release = tmp_path / "os-release"
    release.write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n')
    assert debian_codename(release) == "bookworm"
    release.write_text("ID=debian\n")
    with pytest.raises(StackError, match="VERSION_CODENAME"):
        debian_codename(release, component="prometheus")


def test_private_apt_uses_only_its_own_folder(tmp_path: Path):
    from deploy.stack.apt import KEYRING, PrivateApt

    apt = PrivateApt(tmp_path / "apt", "prometheus", tmp_path / "log")
    apt.configure("deb", "bookworm", uri="http://mirror.example/debian")
    assert (tmp_path / "apt/sources.list").read_text() == (
        f"deb [signed-by={KEYRING}] http://mirror.example/debian bookworm main\n"
    )
    options = apt.options()
    assert f"Dir::State::Lists={tmp_path / 'apt/lists'}" in options
    assert "Dir::Etc::sourceparts=/dev/null" in options
    assert (tmp_path / "apt/archives/partial").is_dir()


def _fake_package(root: Path, *, executable: bool = True) -> None:
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/share/prometheus/web").mkdir(parents=True)
    for name in ("prometheus", "promtool"):
        binary = root / "usr/bin" / name
        binary.write_text("#!/bin/sh\necho 'prometheus, version 9.9.9+ds (branch: x)'\n")
        binary.chmod(0o755 if executable else 0o644)


def test_extracted_package_is_found_when_the_machine_has_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from deploy.stack import prometheus

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(prometheus, "SYSTEM_BIN", tmp_path / "empty")
    install = prometheus.PrometheusInstall(tmp_path)
    assert install.located() is None
    with pytest.raises(StackError, match="racelab stack up"):
        prometheus.prometheus_binaries(tmp_path)
    _fake_package(install.root)
    found = install.located()
    assert found is not None
    assert found.promtool == install.root / "usr/bin/promtool"
    assert found.web_assets == install.root / "usr/share/prometheus/web"
    assert found.version() == "9.9.9+ds"
    assert install.ensure() == found  # nothing to fetch


def test_binaries_that_are_not_executable_do_not_count(tmp_path: Path):
    from deploy.stack.prometheus import PrometheusBinaries

    _fake_package(tmp_path, executable=False)
    assert PrometheusBinaries.in_folder(tmp_path / "usr/bin", tmp_path / "usr/share") is None
