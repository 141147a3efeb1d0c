from datetime import UTC, date, datetime, timedelta

import pytest

from producers.simulator.clock import SimClock
from producers.simulator.faults import FaultInjector, FaultRule
from producers.simulator.world import TRACKS, World

DAY = date(2024, 12, 14)  # a Saturday: seoul (horse) and the cycle tracks race


def test_race_days_are_deterministic_and_sized_per_race_type():
    a, b = World(seed=3), World(seed=3)
    for track in ("seoul", "gwangmyeong"):
        races_a, races_b = a.races(track, DAY), b.races(track, DAY)
        assert [r.race_id for r in races_a] == [r.race_id for r in races_b]
        assert [r.finish_order for r in races_a] == [r.finish_order for r in races_b]
        assert 10 <= len(races_a) <= 16
    assert all(len(r.runners) == 7 for r in a.races("gwangmyeong", DAY))
    assert all(12 <= len(r.runners) <= 16 for r in a.races("seoul", DAY))
    boat_day = date(2024, 12, 12)
    assert all(len(r.runners) == 6 for r in a.races("misari", boat_day))
    assert a.races("misari", DAY) == ()
    assert (
        World(seed=4).races("seoul", DAY)[0].finish_order != a.races("seoul", DAY)[0].finish_order
        or World(seed=4).races("seoul", DAY)[0].runners != a.races("seoul", DAY)[0].runners
    )


def test_results_and_dividends_agree():
    world = World(seed=11)
    for track in TRACKS:
        for day in world.race_days(track, date(2024, 12, 9), date(2024, 12, 15)):
            for race in world.races(track, day):
                if race.cancelled:
                    assert race.final_odds() == {} and race.winning() == {}
                    continue
                starters = {r.entry_no for r in race.starters}
                assert set(race.finish_order) | race.disqualified | race.did_not_finish == starters
                odds = race.final_odds()
                for pool, selections in race.winning().items():
                    for selection in selections:
                        assert odds[(pool, selection)] >= 1.0
                n = len(starters)
                assert sum(1 for k in odds if k[0] == "TRI") == n * (n - 1) * (n - 2)
                assert sum(1 for k in odds if k[0] == "QNL") == n * (n - 1) // 2
                assert all(k[1] == tuple(sorted(k[1])) for k in odds if k[0] in ("QNL", "QPL", "TLA"))


def test_favourites_win_more_often():
    world = World(seed=5)
    favourite_wins = races = 0
    for day in world.race_days("seoul", date(2024, 1, 1), date(2024, 3, 31)):
        for race in world.races("seoul", day):
            if race.cancelled:
                continue
            races += 1
            strength = race.win_probabilities()
            favourite_wins += race.finish_order[0] == max(strength, key=strength.get)
    assert races > 250
    assert favourite_wins / races > 1.5 / 14  # far better than a random runner


def test_live_odds_drift_then_settle_on_final():
    race = World(seed=2).races("seoul", DAY)[4]
    assert race.live_odds(race.post_time - timedelta(minutes=61)) == {}
    early = race.live_odds(race.post_time - timedelta(minutes=45))
    late = race.live_odds(race.post_time - timedelta(minutes=1))
    at_post = race.live_odds(race.post_time)
    final = race.final_odds()
    assert {k[0] for k in early} == {"WIN", "PLC", "QNL"}
    assert early != at_post
    assert all(at_post[k][0] == pytest.approx(final[k], abs=0.051) for k in at_post)
    assert all(late[k][1] >= early[k][1] for k in early)  # pools only grow
    assert race.live_odds(race.post_time + timedelta(minutes=5)) == at_post  # closed at post time


def test_kspo_rounds_round_trip():
    world = World()
    for race_type, track in (("cycle", "gwangmyeong"), ("boat", "misari")):
        for day in world.race_days(track, date(2024, 1, 1), date(2024, 3, 1)):
            year, rnd, day_no = world.round_of(race_type, day)
            assert day_no >= 1
            assert world.day_of_round(race_type, year, rnd, day_no) == day


def test_accelerated_clock(monkeypatch):
    ticks = iter([100.0, 100.0, 110.0, 120.0])
    monkeypatch.setattr("producers.simulator.clock.time.monotonic", lambda: next(ticks))
    start = datetime(2024, 12, 14, 1, 0, tzinfo=UTC)
    clock = SimClock(start=start, speed=60)
    assert clock.now() == start
    assert clock.now() == start + timedelta(minutes=10)
    with pytest.raises(ValueError):
        SimClock(start=datetime(2024, 1, 1), speed=1)  # noqa: DTZ001


def test_fault_rules_parse_and_fire_deterministically():
    rule = FaultRule.parse("API214_1/*:http_503:0.5:3")
    assert (rule.endpoint, rule.fault, rule.rate, rule.times) == ("API214_1/*", "http_503", 0.5, 3)
    assert FaultRule.parse("*:latency:1@0.25").latency_s == 0.25
    with pytest.raises(ValueError):
        FaultRule.parse("*:explode")
    injector = FaultInjector([FaultRule("API214_1/*", "http_503", rate=1.0, times=2)], seed=1)
    picks = [injector.pick("API214_1/RaceDetailResult_1")[1] for _ in range(4)]
    assert [p is not None for p in picks] == [True, True, False, False]
    assert injector.pick("API26_2/entrySheet_2") == (0.0, None)


def test_finish_times_never_decrease_with_the_position():
    """A later finisher is never faster (the rule `racelab audit` checks on stored data; the simulator obeys it)."""
    world = World(seed=7)
    checked = 0
    for track in ("seoul", "busan", "jeju", "gwangmyeong", "misari"):
        for day in world.race_days(track, date(2026, 11, 30), date(2026, 12, 6)):
            for race in world.races(track, day):
                times = [race.finish_times[n] for n in race.finish_order]
                assert times == sorted(times), race.race_id
                checked += 1
    assert checked > 50
