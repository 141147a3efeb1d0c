"""Which batches the day rollup may take without grouping per selection (sinks.rollup.one_each)."""

from datetime import UTC, datetime

from sinks import rollup

RACE = "horse-seoul-3-20241214"
OTHER = "horse-seoul-4-20241214"
FINAL = datetime(2024, 12, 14, 14, 59, 59, tzinfo=UTC)  # 23:59:59 in Korea


def test_one_board_per_race_and_korean_day_needs_no_grouping() -> None:
    assert rollup.one_each({(FINAL, RACE), (FINAL, OTHER)})
    assert rollup.one_each({(datetime(2024, 12, 13, 15, 0, tzinfo=UTC), RACE), (FINAL, OTHER)})


def test_two_boards_of_one_race_on_one_korean_day_are_grouped() -> None:
    # 10:00 and 23:59:59 Korean time of the same day
    assert not rollup.one_each({(datetime(2024, 12, 14, 1, 0, tzinfo=UTC), RACE), (FINAL, RACE)})
    # 14 Dec 16:00 UTC is 15 Dec 01:00 in Korea, the same Korean day as 14 Dec 23:30 UTC (15 Dec 08:30)
    assert not rollup.one_each(
        {(datetime(2024, 12, 14, 16, 0, tzinfo=UTC), RACE), (datetime(2024, 12, 14, 23, 30, tzinfo=UTC), RACE)}
    )


def test_the_same_race_on_two_korean_days_needs_no_grouping() -> None:
    # 14 Dec 14:00 UTC is 23:00 on the 14th in Korea; 14 Dec 15:00 UTC is 00:00 on the 15th
    assert rollup.one_each(
        {(datetime(2024, 12, 14, 14, 0, tzinfo=UTC), RACE), (datetime(2024, 12, 14, 15, 0, tzinfo=UTC), RACE)}
    )
