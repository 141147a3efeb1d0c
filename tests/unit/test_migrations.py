from pathlib import Path

import pytest

from sinks.errors import MigrationError
from sinks.migrate import MIGRATIONS_DIR, discover


def test_shipped_migrations_pick_license_variant():
    apache = discover(MIGRATIONS_DIR, "apache")
    timescale = discover(MIGRATIONS_DIR, "timescale")
    assert [m.version for m in apache] == [m.version for m in timescale]
    assert [m.version for m in apache] == sorted(m.version for m in apache)
    variants = {m.version: (m.variant, t.variant) for m, t in zip(apache, timescale, strict=True) if m.variant}
    assert variants, "the rollup migration must have license variants"
    assert all(pair == ("apache", "timescale") for pair in variants.values())


def test_apache_variant_defines_same_summary_columns_as_timescale():
    def columns(sql: str) -> list[str]:
        body = sql.split("SELECT time_bucket", 1)[1].split("FROM odds_snapshots", 1)[0]
        return [line.strip().rstrip(",").split()[-1] for line in body.splitlines()[1:] if line.strip()]

    apache = (MIGRATIONS_DIR / "0003_odds_rollups.apache.sql").read_text()
    timescale = (MIGRATIONS_DIR / "0003_odds_rollups.timescale.sql").read_text()
    assert columns(apache) == columns(timescale)
    assert "odds_daily_summary" in apache and "odds_daily_summary" in timescale


@pytest.mark.parametrize(
    "files",
    [
        ["0001_a.sql", "0001_a.apache.sql"],
        ["0002_b.timescale.sql"],
        ["1_bad name.sql"],
    ],
)
def test_inconsistent_migration_sets_are_rejected(tmp_path: Path, files):
    for name in files:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError):
        discover(tmp_path, "apache")
