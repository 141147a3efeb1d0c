"""The KSPO calendar: learned from the dates the APIs publish (the reference's verbatim rows), planned from, never
guessed; and the simulator's calendar, whose rounds skip break weeks like the real ones."""

from datetime import UTC, date, datetime

import orjson

from producers import plans
from producers.calendar import Calendar, RaceDay, learned
from producers.client import RawResponse
from producers.simulator.world import World, is_kspo_holiday
from producers.state import RaceRef
from schemas import endpoints as ep


def page(rows: list[dict]) -> RawResponse:
    body = orjson.dumps({"response": {"header": {"resultCode": "00"}, "body": {"items": {"item": rows}}}})
    at = datetime(2026, 8, 14, tzinfo=UTC)
    return RawResponse("kspo", "e", {}, body, 200, at, 1, len(rows), len(rows), 1, 0.1)


# Example E (cycle, probed live 2026-08-14) and Example F (boat) of the reference, verbatim
CYCLE_ENTRY = {"race_no": "01", "race_ymd": "2026.01.02", "meet_nm": "광명  ", "stnd_yr": "2026", "week_tcnt": "01",
               "day_tcnt": "1", "back_no": "1", "racer_nm": "신용수"}  # fmt: skip
CYCLE_RANK = {"race_day": "20260613", "meet_nm": "광명", "race_no": "15", "day_ord": "2", "race_rank": "06",
              "racer_no": "20100013", "row_num": 1, "tms": "24", "racer_nm": "유태복", "stnd_year": "2026"}  # fmt: skip
BOAT_PAYOFF = {"race_no": "01", "pool4_val": "8.3", "pool5_val": "7.9", "week_tcnt": 5, "pool6_val": "22.2",
               "day_tcnt": 1, "pool1_val": "1.7", "pool2_2_val": "3.9", "stnd_yr": "2026", "row_num": 1,
               "race_ymd": "20260128", "pool2_1_val": "1.1"}  # fmt: skip
CYCLE_RESULT = {
    "race_no": "01",
    "week_tcnt": 1,
    "day_tcnt": 1,
    "race_ymd": "0102",
    "meet_nm": "광명",
    "stnd_yr": "2026",
}


def test_the_published_dates_teach_the_calendar():
    assert learned(ep.CYCLE_ENTRIES.path, [page([CYCLE_ENTRY])]) == [
        RaceDay("cycle", "gwangmyeong", date(2026, 1, 2), 2026, 1, 1)
    ]
    assert learned(ep.CYCLE_RANK.path, [page([CYCLE_RANK])]) == [
        RaceDay("cycle", "gwangmyeong", date(2026, 6, 13), 2026, 24, 2)
    ]
    assert learned(ep.BOAT_PAYOFF.path, [page([BOAT_PAYOFF])]) == [
        RaceDay("boat", "misari", date(2026, 1, 28), 2026, 5, 1)
    ]


def test_what_publishes_no_full_date_teaches_nothing():
    assert learned(ep.CYCLE_RESULT.path, [page([CYCLE_RESULT])]) == []  # "0102": month and day only
    assert learned(ep.BOAT_ENTRIES.path, [page([{"race_no": "01", "week_tcnt": "05", "day_tcnt": "1"}])]) == []
    assert learned(ep.CYCLE_RANK.path, [page([CYCLE_RANK | {"meet_nm": "미사리"}])]) == []  # not a cycle track
    assert learned(ep.CYCLE_RANK.path, [page([CYCLE_RANK | {"tms": "-"}])]) == []


KNOWN = Calendar(
    [
        RaceDay("boat", "misari", date(2024, 12, 11), 2024, 47, 1),
        RaceDay("boat", "misari", date(2024, 12, 12), 2024, 47, 2),
        RaceDay("cycle", "gwangmyeong", date(2024, 12, 13), 2024, 47, 1),
    ]
)


def test_a_day_the_calendar_does_not_know_gets_only_the_questions_that_teach_it():
    for day in (date(2024, 12, 13), date(2024, 12, 14), date(2024, 12, 15)):  # after the known Wednesday, Thursday
        (call,) = plans.schedule_calls("misari", day, KNOWN)
        assert (call.endpoint, call.params) == (
            ep.BOAT_RANK.path,
            {"stnd_year": "2024", "race_day": f"{day:%Y%m%d}"},
        )
    # before any known day: that day's ranks and those of the week before (they name the latest round)
    asked = [c.params["race_day"] for c in plans.schedule_calls("misari", date(2024, 12, 10), KNOWN)]
    assert asked == ["20241210", "20241209", "20241208", "20241207", "20241206", "20241205", "20241204", "20241203"]
    (wednesday,) = plans.schedule_calls("misari", date(2024, 12, 11), KNOWN)
    assert (wednesday.endpoint, wednesday.params, wednesday.key) == (
        ep.BOAT_ENTRIES.path,
        {"stnd_yr": "2024", "week_tcnt": "47", "day_tcnt": "1"},
        "kspo:misari:20241211",
    )
    # a cycle day after the last known one: its ranks, and the cards of that round and the next
    asked = [
        (c.endpoint, c.params.get("week_tcnt")) for c in plans.schedule_calls("gwangmyeong", date(2024, 12, 14), KNOWN)
    ]
    assert asked == [(ep.CYCLE_RANK.path, None), (ep.CYCLE_ENTRIES.path, "47"), (ep.CYCLE_ENTRIES.path, "48")]
    assert plans.entry_calls("misari", date(2024, 12, 13), [], KNOWN) == []


def test_a_stored_race_without_its_round_and_an_unknown_day_gets_no_call():
    race = RaceRef("boat-misari-3-20241213", "boat", "misari", date(2024, 12, 13), 3,
                   datetime(2024, 12, 13, 3, tzinfo=UTC), "unknown", {})  # fmt: skip
    assert plans.result_call(race, KNOWN) is None and plans.final_odds_call(race, KNOWN) is None
    thursday = RaceRef("boat-misari-3-20241212", "boat", "misari", date(2024, 12, 12), 3, race.post_time, "unknown", {})
    known = plans.result_call(thursday, KNOWN)
    assert known is not None and known.params == {
        "stnd_yr": "2024",
        "week_tcnt": "47",
        "day_tcnt": "2",
        "race_no": "03",
    }


def test_the_simulated_rounds_skip_break_weeks_and_are_not_week_numbers():
    world = World(seed=1)
    assert world.round_of("cycle", date(2026, 1, 2)) == (2026, 1, 1)  # as the real Example E row: 2026.01.02
    assert is_kspo_holiday(date(2026, 2, 13)) and not world.is_race_day("gwangmyeong", date(2026, 2, 13))
    assert world.round_of("cycle", date(2026, 2, 13)) == (2026, 0, 0)  # no racing in the break week
    differ = [
        d
        for d in world.race_days("gwangmyeong", date(2026, 1, 1), date(2026, 12, 31))
        if world.round_of("cycle", d)[1] != d.isocalendar()[1]
    ]
    assert len(differ) > 100  # after the first break, every round is behind its week number
    for d in world.race_days("misari", date(2026, 1, 1), date(2026, 3, 31)):
        year, rnd, day_no = world.round_of("boat", d)
        assert world.day_of_round("boat", year, rnd, day_no) == d
