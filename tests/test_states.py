"""Run and task state machines: complete tables, terminal states, refused transitions."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TypeVar

import pytest

from podium.errors import PodiumError
from podium.states import (
    RUN_TERMINAL,
    RUN_TRANSITIONS,
    RUN_WAITING,
    TASK_FAILED,
    TASK_TERMINAL,
    TASK_TRANSITIONS,
    RunStatus,
    TaskStatus,
    TransitionError,
    check_run,
    check_task,
)
from podium.store import Store, open_store

R, T = RunStatus, TaskStatus

# Terminal task states that may still move, and where to (documented exceptions).
TASK_TERMINAL_EXITS: dict[TaskStatus, frozenset[TaskStatus]] = {
    T.SUCCEEDED: frozenset({T.ROLLING_BACK}),
    T.FAILED: frozenset({T.PENDING}),
    T.TIMED_OUT: frozenset({T.PENDING}),
}


S = TypeVar("S", RunStatus, TaskStatus)


def reachable(table: Mapping[S, frozenset[S]], start: S) -> set[S]:
    seen = {start}
    todo = [start]
    while todo:
        for nxt in table[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_every_run_status_has_a_row() -> None:
    """Each RunStatus is a key of RUN_TRANSITIONS and every target is a RunStatus."""
    assert set(RUN_TRANSITIONS) == set(RunStatus)
    for targets in RUN_TRANSITIONS.values():
        assert targets <= set(RunStatus)


def test_every_task_status_has_a_row() -> None:
    """Each TaskStatus is a key of TASK_TRANSITIONS and every target is a TaskStatus."""
    assert set(TASK_TRANSITIONS) == set(TaskStatus)
    for targets in TASK_TRANSITIONS.values():
        assert targets <= set(TaskStatus)


def test_every_state_is_reachable_from_pending() -> None:
    """No dead rows: every run and task state can be reached from PENDING."""
    assert reachable(RUN_TRANSITIONS, R.PENDING) == set(RunStatus)
    assert reachable(TASK_TRANSITIONS, T.PENDING) == set(TaskStatus)


def test_terminal_run_states_have_no_way_out() -> None:
    """Exactly the terminal run states have no outgoing transitions."""
    assert {s for s, targets in RUN_TRANSITIONS.items() if not targets} == RUN_TERMINAL
    assert RUN_WAITING.isdisjoint(RUN_TERMINAL)


def test_terminal_task_states_leave_only_by_documented_exits() -> None:
    """Terminal tasks move only SUCCEEDED → ROLLING_BACK and FAILED/TIMED_OUT → PENDING."""
    for status in TASK_TERMINAL:
        assert TASK_TRANSITIONS[status] == TASK_TERMINAL_EXITS.get(status, frozenset()), status
    assert TASK_FAILED <= TASK_TERMINAL


def test_non_terminal_states_can_always_move_on() -> None:
    """A state that is not terminal has somewhere to go (no stuck runs or tasks)."""
    for run_status in set(RunStatus) - RUN_TERMINAL:
        assert RUN_TRANSITIONS[run_status], run_status
    for task_status in set(TaskStatus) - TASK_TERMINAL:
        assert TASK_TRANSITIONS[task_status], task_status


def test_the_documented_happy_paths_are_allowed() -> None:
    """The design's paths pass check_run/check_task step by step."""
    run_path = [R.PENDING, R.RUNNING, R.WAITING_APPROVAL, R.RUNNING, R.FAILED]
    saga = [R.PENDING, R.RUNNING, R.ROLLING_BACK, R.ROLLED_BACK]
    for path in (run_path, saga, [R.RUNNING, R.ROLLING_BACK, R.ROLLBACK_FAILED]):
        for old, new in itertools.pairwise(path):
            assert check_run(old, new) is new
    task_path = [T.PENDING, T.WAITING_APPROVAL, T.RUNNING, T.SUCCEEDED, T.ROLLING_BACK]
    for steps in (task_path, [T.ROLLING_BACK, T.ROLLED_BACK], [T.RUNNING, T.TIMED_OUT, T.PENDING]):
        for before, after in itertools.pairwise(steps):
            assert check_task(before, after) is after


RUN_ILLEGAL = [
    (old, new)
    for old, new in itertools.product(RunStatus, RunStatus)
    if old != new and new not in RUN_TRANSITIONS[old]
]
TASK_ILLEGAL = [
    (old, new)
    for old, new in itertools.product(TaskStatus, TaskStatus)
    if old != new and new not in TASK_TRANSITIONS[old]
]


@pytest.mark.parametrize(("old", "new"), RUN_ILLEGAL, ids=[f"{o}->{n}" for o, n in RUN_ILLEGAL])
def test_check_run_refuses_illegal_moves(old: RunStatus, new: RunStatus) -> None:
    """Every run move not in the table raises TransitionError naming both states."""
    with pytest.raises(TransitionError, match=f"from {old} to {new}"):
        check_run(old, new)


@pytest.mark.parametrize(("old", "new"), TASK_ILLEGAL, ids=[f"{o}->{n}" for o, n in TASK_ILLEGAL])
def test_check_task_refuses_illegal_moves(old: TaskStatus, new: TaskStatus) -> None:
    """Every task move not in the table raises TransitionError naming both states."""
    with pytest.raises(TransitionError, match=f"from {old} to {new}"):
        check_task(old, new)


def test_some_well_known_moves_are_refused() -> None:
    """Spot checks: no resurrecting finished runs, no skipping straight to success."""
    assert (R.SUCCEEDED, R.RUNNING) in RUN_ILLEGAL
    assert (R.PENDING, R.SUCCEEDED) in RUN_ILLEGAL
    assert (R.ROLLED_BACK, R.ROLLING_BACK) in RUN_ILLEGAL
    assert (T.PENDING, T.SUCCEEDED) in TASK_ILLEGAL
    assert (T.SKIPPED, T.RUNNING) in TASK_ILLEGAL
    assert (T.FAILED, T.ROLLING_BACK) in TASK_ILLEGAL


def test_transition_error_is_a_podium_error() -> None:
    """TransitionError belongs to the one error tree."""
    assert issubclass(TransitionError, PodiumError)


def test_status_names_are_the_shared_strings() -> None:
    """Statuses are plain strings (store, CLI, JSON and chat share the names)."""
    assert RunStatus("waiting_approval") is R.WAITING_APPROVAL
    assert TaskStatus("timed_out") is T.TIMED_OUT
    assert f"{R.ROLLBACK_FAILED}" == "rollback_failed"


# -- the store enforces the machines -------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "state.db")
    yield s
    s.close()


def new_run(store: Store) -> int:
    return store.create_run(
        "deploy",
        "abc123",
        "commit",
        {"name": "deploy"},
        [
            {
                "task": "build",
                "fingerprint": "fp",
                "spec_hash": "s",
                "inputs_hash": "i",
                "reason": "new",
            }
        ],
    )


def test_store_refuses_illegal_run_transition(store: Store) -> None:
    """set_run_status raises TransitionError and leaves the stored status as it was."""
    run_id = new_run(store)
    with pytest.raises(TransitionError):
        store.set_run_status(run_id, R.SUCCEEDED)
    assert store.get_run(run_id).status is R.PENDING
    store.set_run_status(run_id, R.RUNNING)
    store.set_run_status(run_id, R.SUCCEEDED)
    with pytest.raises(TransitionError):
        store.set_run_status(run_id, R.RUNNING)
    assert store.get_run(run_id).status is R.SUCCEEDED


def test_store_refuses_illegal_task_transition(store: Store) -> None:
    """set_task_status raises TransitionError and leaves the stored task untouched."""
    run_id = new_run(store)
    with pytest.raises(TransitionError):
        store.set_task_status(run_id, "build", T.SUCCEEDED, error="nope")
    task = store.get_run_task(run_id, "build")
    assert task.status is T.PENDING and task.error is None
    store.set_task_status(run_id, "build", T.RUNNING)
    store.set_task_status(run_id, "build", T.CANCELLED)
    with pytest.raises(TransitionError):
        store.set_task_status(run_id, "build", T.PENDING)
    assert store.get_run_task(run_id, "build").status is T.CANCELLED


def test_refused_transition_inside_a_transaction_rolls_it_back(store: Store) -> None:
    """An illegal move inside ``tx()`` undoes the other writes of that transaction."""
    run_id = new_run(store)
    with pytest.raises(TransitionError), store.tx():
        store.set_task_status(run_id, "build", T.RUNNING)
        store.set_run_status(run_id, R.ROLLED_BACK)
    assert store.get_run_task(run_id, "build").status is T.PENDING
    assert store.get_run(run_id).status is R.PENDING
