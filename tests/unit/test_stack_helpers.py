from pathlib import Path

import pytest

from deploy.stack.errors import StackError
from deploy.stack.process import free_port, pid_alive, port_open
from deploy.stack.timescaledb import debian_archive_uri


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
