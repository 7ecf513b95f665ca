"""Log retention on real directories: old and surplus finished runs lose their logs,
active runs and unlisted directories never do."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.retention import DAY, log_dir, prune_logs
from tests.gitrepo import GitRepo

NOW = 1_700_000_000.0


def make_logs(data_dir: Path, *run_ids: int) -> None:
    """A log directory with one attempt's log (and a rotated one) per run."""
    for run_id in run_ids:
        folder = log_dir(data_dir, run_id)
        (folder / "deploy").mkdir(parents=True)
        (folder / "deploy" / "1.log").write_text(f"run {run_id}\n")
        (folder / "deploy" / "1.log.1").write_text("older\n")


def remaining(data_dir: Path) -> list[str]:
    """The run directories left under logs/, sorted."""
    return sorted(p.name for p in (data_dir / "logs").iterdir())


def test_keep_runs_keeps_the_newest_finished_runs(tmp_path: Path) -> None:
    """Beyond the newest N finished runs, logs are deleted and their run ids returned."""
    make_logs(tmp_path, 1, 2, 3, 4, 5)
    runs = [(run_id, NOW - 100 + run_id) for run_id in (1, 2, 3, 4, 5)]
    assert prune_logs(tmp_path, runs, keep_runs=2, keep_days=None, now=NOW) == [1, 2, 3]
    assert remaining(tmp_path) == ["run-4", "run-5"]
    assert prune_logs(tmp_path, runs, keep_runs=2, keep_days=None, now=NOW) == []


def test_active_runs_are_never_pruned_nor_counted(tmp_path: Path) -> None:
    """A run without finished_at keeps its logs whatever the limits; it uses no keep slot."""
    make_logs(tmp_path, 1, 2, 3, 4)
    runs = [(1, None), (2, NOW - 90 * DAY), (3, NOW - 80 * DAY), (4, None)]
    assert prune_logs(tmp_path, runs, keep_runs=1, keep_days=None, now=NOW) == [2]
    assert remaining(tmp_path) == ["run-1", "run-3", "run-4"]
    assert prune_logs(tmp_path, runs, keep_runs=0, keep_days=0, now=NOW) == [3]
    assert remaining(tmp_path) == ["run-1", "run-4"]


def test_keep_days_deletes_runs_finished_longer_ago(tmp_path: Path) -> None:
    """Runs that finished more than keep_days before now lose their logs; recent ones stay."""
    make_logs(tmp_path, 7, 8, 9)
    runs = [(7, NOW - 31 * DAY), (8, NOW - 29 * DAY), (9, NOW - 3600)]
    assert prune_logs(tmp_path, runs, keep_runs=None, keep_days=30, now=NOW) == [7]
    assert remaining(tmp_path) == ["run-8", "run-9"]


def test_either_limit_prunes(tmp_path: Path) -> None:
    """With both limits, a run goes when it is too old or beyond the newest N."""
    make_logs(tmp_path, 1, 2, 3)
    runs = [(1, NOW - 1), (2, NOW - 10 * DAY), (3, NOW - 2)]
    assert prune_logs(tmp_path, runs, keep_runs=2, keep_days=5, now=NOW) == [1, 2]
    assert remaining(tmp_path) == ["run-3"]


def test_no_limits_prune_nothing_and_unlisted_directories_stay(tmp_path: Path) -> None:
    """Without limits nothing goes; a directory of a run not listed is never touched."""
    make_logs(tmp_path, 1, 2, 50)
    runs = [(1, NOW - 400 * DAY), (2, NOW - 300 * DAY)]
    assert prune_logs(tmp_path, runs, keep_runs=None, keep_days=None, now=NOW) == []
    assert prune_logs(tmp_path, runs, keep_runs=0, keep_days=None, now=NOW) == [1, 2]
    assert remaining(tmp_path) == ["run-50"]


def test_missing_directories_are_skipped(tmp_path: Path) -> None:
    """A run whose logs never existed (or are gone) is not reported as pruned."""
    make_logs(tmp_path, 2)
    runs = [(1, NOW - 10 * DAY), (2, NOW - 10 * DAY)]
    assert prune_logs(tmp_path, runs, keep_runs=0, keep_days=None, now=NOW) == [2]
    assert prune_logs(tmp_path / "nowhere", runs, keep_runs=0, keep_days=None, now=NOW) == []


def test_a_symlink_in_place_of_a_log_directory_is_not_followed(tmp_path: Path) -> None:
    """A run-N symlink is removed as a link; what it points to is left intact."""
    data = tmp_path / "data"
    elsewhere = tmp_path / "precious"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep\n")
    (data / "logs").mkdir(parents=True)
    log_dir(data, 3).symlink_to(elsewhere, target_is_directory=True)
    assert prune_logs(data, [(3, NOW - DAY)], keep_runs=0, keep_days=None, now=NOW) == [3]
    assert not log_dir(data, 3).exists() and (elsewhere / "keep.txt").read_text() == "keep\n"


def test_negative_limits_are_refused(tmp_path: Path) -> None:
    """A negative keep_runs or keep_days is a ValueError, nothing is deleted."""
    make_logs(tmp_path, 1)
    with pytest.raises(ValueError, match="keep_runs"):
        prune_logs(tmp_path, [(1, NOW)], keep_runs=-1, keep_days=None, now=NOW)
    with pytest.raises(ValueError, match="keep_days"):
        prune_logs(tmp_path, [(1, NOW)], keep_runs=None, keep_days=-2, now=NOW)
    assert remaining(tmp_path) == ["run-1"]


def test_the_agent_applies_the_retention_settings(
    repo: GitRepo, data_dir: Path, tmp_path: Path
) -> None:
    """`podium agent --log-retention-runs 1` deletes the logs of all but the newest run."""
    from tests.agentproc import AgentProcess, wait_until
    from tests.gitrepo import workflow
    from tests.test_cli_engine import podium

    for n in range(3):
        repo.commit({"workflows/w.yaml": workflow("w", f"  - {{id: a, run: echo {n}}}\n")})
        assert podium("reconcile", "--repo", repo.url).returncode == 0
    logs = data_dir / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["run-1", "run-2", "run-3"]
    with AgentProcess(
        repo.url, data_dir / "state.db", "--log-retention-runs", "1", listen=False
    ) as agent:
        wait_until(lambda: sorted(p.name for p in logs.iterdir()) == ["run-3"])
        assert agent.stop() == 0
