"""Checkouts: a run's private checkout of its revision, its tasks' environment (secrets by
name only), and the removal of checkouts no active run needs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from podium.engine.checkouts import PASS_ENV, Checkouts
from podium.errors import SourceError
from podium.source.git import GitSource
from tests.enginekit import WF, Kit, kit_fixture, load, load_at  # noqa: F401 - the kit fixture
from tests.gitrepo import GitRepo, workflow

TASKS = """\
  - id: deploy
    run: ./deploy.sh
    env: {REGION: us-east-1, TOKEN: {secret: DEPLOY_TOKEN}}
  - {id: check, run: ./check.sh}
"""
SPEC = workflow("w", TASKS, params="{STAGE: prod, REGION: eu-west-1}")


@pytest.fixture(name="source")
def source_fixture(repo: GitRepo, data_dir: Path) -> GitSource:
    """A real Git source with two revisions of ``data.txt`` (``one``, then ``two``)."""
    repo.commit({WF: SPEC, "data.txt": "one\n"})
    repo.commit({"data.txt": "two\n"})
    source = GitSource(repo.url, data_dir / "cache")
    assert source.fetch().ok
    return source


def _first_revision(source: GitSource) -> str:
    return source.resolve("main~1")


def test_a_run_gets_a_checkout_of_its_own_revision(kit: Kit, source: GitSource) -> None:
    """The checkout holds the files as they are at the run's revision, not the newest."""
    ctx = kit.context(kit.create(load_at(source, _first_revision(source))))
    root = Checkouts(source, kit.data_dir).prepare(ctx)
    assert root == kit.data_dir / "checkouts" / f"run-{ctx.run.id}"
    assert (root / "data.txt").read_text() == "one\n"


def test_a_checkout_is_made_once_per_run(kit: Kit, source: GitSource) -> None:
    """Later tasks of the run reuse its checkout as their tasks left it."""
    ctx = kit.context(kit.create(load_at(source, _first_revision(source))))
    checkouts = Checkouts(source, kit.data_dir)
    root = checkouts.prepare(ctx)
    (root / "built.txt").write_text("artifact")
    assert checkouts.prepare(ctx) == root
    assert (root / "built.txt").read_text() == "artifact"


def test_a_leftover_checkout_is_replaced_by_a_fresh_one(kit: Kit, source: GitSource) -> None:
    """What a dead agent left at the run's checkout path does not leak into the new one."""
    ctx = kit.context(kit.create(load_at(source, _first_revision(source))))
    Checkouts(source, kit.data_dir).prepare(ctx)
    root = kit.data_dir / "checkouts" / f"run-{ctx.run.id}"
    (root / "data.txt").write_text("tampered\n")
    (root / "stale.txt").write_text("stale")
    fresh = Checkouts(source, kit.data_dir).prepare(ctx)  # another agent process
    assert (fresh / "data.txt").read_text() == "one\n"
    assert not (fresh / "stale.txt").exists()


def test_without_a_source_there_is_no_checkout(kit: Kit) -> None:
    """A run cannot be checked out without a source: one clear SourceError."""
    ctx = kit.context(kit.create(load(SPEC)))
    with pytest.raises(SourceError, match="no source"):
        Checkouts(None, kit.data_dir).prepare(ctx)


def test_a_task_sees_only_what_it_is_given_and_secrets_by_name(
    kit: Kit, source: GitSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task sees pass-through variables, params under its env, PODIUM_* values, secret names."""
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "agent-only")
    monkeypatch.setenv("DEPLOY_TOKEN", "s3cr3t-value")
    revision = _first_revision(source)
    ctx = kit.context(kit.create(load_at(source, revision)))
    checkouts = Checkouts(source, kit.data_dir)
    root = checkouts.prepare(ctx)
    env, named = checkouts.task_env(ctx, ctx.specs["deploy"])
    passed = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
    assert passed["LANG"] == "C.UTF-8"
    assert env == {
        **passed,
        "PODIUM_RUN_ID": str(ctx.run.id),
        "PODIUM_WORKFLOW": "w",
        "PODIUM_REVISION": revision,
        "PODIUM_CHECKOUT": str(root),
        "PODIUM_DATA_DIR": str(kit.data_dir),
        "PODIUM_TASK": "deploy",
        "STAGE": "prod",
        "REGION": "us-east-1",
    }
    assert named == {"TOKEN": "DEPLOY_TOKEN"}
    assert "s3cr3t-value" not in env.values()


def test_one_tasks_environment_does_not_leak_into_another(kit: Kit, source: GitSource) -> None:
    """Each task starts from the run's environment, not from what an earlier task added."""
    ctx = kit.context(kit.create(load_at(source, _first_revision(source))))
    checkouts = Checkouts(source, kit.data_dir)
    checkouts.prepare(ctx)
    checkouts.task_env(ctx, ctx.specs["deploy"])
    env, named = checkouts.task_env(ctx, ctx.specs["check"])
    assert env["REGION"] == "eu-west-1" and env["PODIUM_TASK"] == "check"
    assert named == {}


def test_the_runs_own_values_cannot_be_overridden_by_the_workflow(kit: Kit, repo: GitRepo) -> None:
    """The engine's PODIUM_* values (the containment marker) win over params and task env."""
    revision = repo.commit(
        {
            WF: workflow(
                "w",
                "  - {id: a, run: a, env: {PODIUM_DATA_DIR: /elsewhere, PODIUM_RUN_ID: '0'}}\n",
                params="{PODIUM_DATA_DIR: /params, PODIUM_WORKFLOW: other, PODIUM_CHECKOUT: /x}",
            )
        }
    )
    source = GitSource(repo.url, kit.data_dir / "cache")
    assert source.fetch().ok
    ctx = kit.context(kit.create(load_at(source, revision)))
    checkouts = Checkouts(source, kit.data_dir)
    root = checkouts.prepare(ctx)
    env, _named = checkouts.task_env(ctx, ctx.specs["a"])
    assert env["PODIUM_DATA_DIR"] == str(kit.data_dir)
    assert env["PODIUM_RUN_ID"] == str(ctx.run.id)
    assert env["PODIUM_WORKFLOW"] == "w"
    assert env["PODIUM_CHECKOUT"] == str(root)


def test_a_finished_runs_checkout_is_removed_unless_kept(kit: Kit, source: GitSource) -> None:
    """remove() deletes a checkout whichever process made it, unless kept; a gone one is fine."""
    revision = _first_revision(source)
    first = kit.context(kit.create(load_at(source, revision)))
    second = kit.context(kit.create(load_at(source, revision)))
    Checkouts(source, kit.data_dir).prepare(first)
    Checkouts(source, kit.data_dir).prepare(second)
    Checkouts(source, kit.data_dir).remove(first.run.id)  # not the process that made it
    assert not (kit.data_dir / "checkouts" / f"run-{first.run.id}").exists()
    Checkouts(source, kit.data_dir).remove(first.run.id)
    Checkouts(source, kit.data_dir, keep=True).remove(second.run.id)
    assert (kit.data_dir / "checkouts" / f"run-{second.run.id}" / "data.txt").exists()


def test_a_removed_checkout_is_made_again_when_the_run_needs_it(
    kit: Kit, source: GitSource
) -> None:
    """After remove() the same run gets a fresh checkout, not a path that no longer exists."""
    ctx = kit.context(kit.create(load_at(source, _first_revision(source))))
    checkouts = Checkouts(source, kit.data_dir)
    checkouts.prepare(ctx)
    checkouts.remove(ctx.run.id)
    root = checkouts.prepare(ctx)
    assert (root / "data.txt").read_text() == "one\n"


def test_a_sweep_removes_only_checkouts_of_runs_no_longer_active(
    kit: Kit, source: GitSource
) -> None:
    """Checkouts of finished runs go; those of active runs and unrelated entries stay."""
    revision = _first_revision(source)
    done = kit.context(kit.create(load_at(source, revision)))
    active = kit.context(kit.create(load_at(source, revision)))
    checkouts = Checkouts(source, kit.data_dir)
    checkouts.prepare(done)
    checkouts.prepare(active)
    unrelated = kit.data_dir / "checkouts" / "notes"
    unrelated.mkdir()
    Checkouts(source, kit.data_dir).sweep({active.run.id})
    remaining = sorted(p.name for p in (kit.data_dir / "checkouts").iterdir())
    assert remaining == sorted([f"run-{active.run.id}", "notes"])


def test_a_sweep_without_any_checkout_does_nothing(kit: Kit, source: GitSource) -> None:
    """No checkouts directory yet: nothing to sweep, nothing created."""
    Checkouts(source, kit.data_dir).sweep(set())
    assert not (kit.data_dir / "checkouts").exists()
