"""The installed distributions expose podium-named packages only."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path


def test_no_generic_top_level_package_is_installed(tmp_path: Path) -> None:
    """Outside the repository, `agent` and `integrations` are not importable; podium is."""
    code = (
        "import importlib.util as u, json;"
        "print(json.dumps({n: u.find_spec(n) is not None"
        " for n in ('agent', 'integrations', 'podium', 'podium_slack')}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == {
        "agent": False,
        "integrations": False,
        "podium": True,
        "podium_slack": True,
    }


def test_entry_points_name_podium_packages() -> None:
    """The console script, task kinds and the Slack integration point into podium packages."""
    groups = {"console_scripts": "podium", "podium.task_kinds": None, "podium.integrations": None}
    for group, only in groups.items():
        found = [e for e in entry_points(group=group) if only is None or e.name == only]
        assert found, group
        assert all(e.value.split(".")[0].split(":")[0] in ("podium", "podium_slack") for e in found)
