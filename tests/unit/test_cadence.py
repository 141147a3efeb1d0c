from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from producers.cadence import due_slot, entry_slots, next_slot, odds_offsets, odds_slots, result_slots

POST = datetime(2024, 12, 14, 3, 0, tzinfo=UTC)


def test_odds_cadence_matches_the_seed():
    offsets = odds_offsets()
    assert offsets[:9] == [3600, 3300, 3000, 2700, 2400, 2100, 1800, 1500, 1200]  # every 5 min to T-15
    assert offsets[9:19] == list(range(900, 300, -60))  # every minute T-15..T-5
    assert offsets[19:] == list(range(300, -1, -30))  # every 30 s T-5..T-0
    assert len(offsets) == 30 and offsets[-1] == 0
    slots = odds_slots(POST)
    assert slots[0] == POST - timedelta(hours=1) and slots[-1] == POST
    assert slots == sorted(slots)


def test_entry_and_result_slots():
    entries = entry_slots(POST)
    assert entries[0] == POST - timedelta(hours=2) and entries[-1] == POST and len(entries) == 9
    results = result_slots(POST)
    assert results[0] == POST + timedelta(minutes=5) and len(results) == 20


def test_due_slot_basics():
    slots = odds_slots(POST)
    assert due_slot(slots, POST - timedelta(hours=2), None) is None
    assert due_slot(slots, POST - timedelta(minutes=59, seconds=30), None) == POST - timedelta(hours=1)
    # just polled that slot: nothing more until the next one
    assert due_slot(slots, POST - timedelta(minutes=57), POST - timedelta(hours=1)) is None
    # missed several slots: only the newest is due (no burst)
    assert due_slot(slots, POST - timedelta(minutes=10, seconds=10), POST - timedelta(hours=1)) == POST - timedelta(
        minutes=11
    )
    # after post time: the T-0 slot within grace, then nothing
    assert due_slot(slots, POST + timedelta(seconds=20), POST - timedelta(seconds=30)) == POST
    assert due_slot(slots, POST + timedelta(minutes=10), POST - timedelta(seconds=30)) is None
    assert next_slot(slots, POST - timedelta(minutes=16)) == POST - timedelta(minutes=15)
    assert next_slot(slots, POST) is None


@settings(max_examples=300)
@given(st.lists(st.integers(min_value=-5000, max_value=600), min_size=1, max_size=200))
def test_no_slot_twice_and_never_in_the_future_whatever_the_clock_does(seconds):
    """Clock jumps forward and back, restarts with the same memory: each slot is polled at most once."""
    slots = odds_slots(POST)
    polled: list[datetime] = []
    last = None
    for s in seconds:
        now = POST + timedelta(seconds=s)
        slot = due_slot(slots, now, last)
        if slot is not None:
            assert slot <= now and slot in slots
            assert last is None or slot > last
            polled.append(slot)
            last = slot
    assert len(polled) == len(set(polled)) and polled == sorted(polled)
