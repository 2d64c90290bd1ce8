"""The admission rules (runtime/runs/admission.py): node and tenant caps, tenants taking
turns, runs of one app not held back, skipped runs keeping their place. No threads or I/O."""

from __future__ import annotations

import uuid

from runtime.runs.admission import Admission, Slot

A, B, C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def runs(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


def test_tenants_take_turns_for_free_slots():
    room = Admission(max_live=4, max_live_per_tenant=10)
    a_runs, b_runs, c_runs = runs(5), runs(2), runs(1)
    for run in a_runs:
        room.wait(run, A)
    for run in b_runs:
        room.wait(run, B)
    for run in c_runs:
        room.wait(run, C)
    admitted = room.admit()
    # One each in turn, then A again: B's and C's first runs do not wait behind A's queue.
    assert [s.run_id for s in admitted] == [a_runs[0], b_runs[0], c_runs[0], a_runs[1]]
    assert room.live == 4 and room.waiting() == 4
    room.release(admitted[0])
    # A had the last turn, so B goes next.
    assert [s.run_id for s in room.admit()] == [b_runs[1]]


def test_a_tenant_at_its_cap_waits_without_blocking_others():
    room = Admission(max_live=10, max_live_per_tenant=2)
    a_runs, b_runs = runs(4), runs(1)
    for run in a_runs:
        room.wait(run, A)
    started = room.admit()
    assert [s.run_id for s in started] == a_runs[:2]
    assert room.executing(A) == 2
    room.wait(b_runs[0], B)
    assert [s.run_id for s in room.admit()] == b_runs
    room.release(started[1])
    assert [s.run_id for s in room.admit()] == [a_runs[2]]
    assert room.waiting_by_tenant() == {A: 1}


def test_runs_of_one_app_are_not_held_back():
    """Each run has its own workspace: runs of one app and user start together."""
    room = Admission(max_live=10, max_live_per_tenant=10)
    first, second = runs(2)
    room.wait(first, A)
    room.wait(second, A)
    assert [s.run_id for s in room.admit()] == [first, second]


def test_skipped_runs_keep_their_place_and_duplicates_are_ignored():
    room = Admission(max_live=1, max_live_per_tenant=1)
    first, second = runs(2)
    room.wait(first, A)
    room.wait(second, A)
    room.wait(first, A)  # a resubmission keeps the original place
    assert [s.run_id for s in room.admit(skip={first}.__contains__)] == [second]
    assert room.is_waiting(first) and not room.is_waiting(second)


def test_held_slots_count_against_both_caps():
    room = Admission(max_live=2, max_live_per_tenant=1)
    restarted = Slot(uuid.uuid4(), A)
    room.hold(restarted)
    queued_a, queued_b, queued_c = runs(3)
    room.wait(queued_a, A)
    room.wait(queued_b, B)
    room.wait(queued_c, C)
    assert [s.run_id for s in room.admit()] == [queued_b]  # A at its cap; node full after B
    room.release(restarted)
    # A was passed over only for its cap, so it keeps its turn ahead of C.
    assert [s.run_id for s in room.admit()] == [queued_a]
    assert room.waiting_by_tenant() == {C: 1}
