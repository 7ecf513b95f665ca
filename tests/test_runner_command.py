"""Plain command lines run without a shell (like make); anything shell-like keeps the shell."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from podium.runners.shell import SHELL, command_argv

ENV = {"PATH": os.environ.get("PATH", os.defpath)}


@pytest.mark.parametrize(
    "command",
    [
        "echo $HOME",
        "ls 'a b'",
        'ls "a"',
        "true && false",
        "true; false",
        "ls > out",
        "ls | wc",
        "A=1 env",
        "cd /tmp",
        "exit 3",
        "echo hi",
        "ls *.py",
        "ls ~",
        "ls\tx",
        "ls  -la",
        "nosuch-command-here x",
        "ls # comment",
    ],
)
def test_shell_syntax_builtins_and_unknown_programs_go_to_the_shell(command: str) -> None:
    """Quoting, expansion, operators, redirection, builtins or an unknown name keep sh -c."""
    assert command_argv(command, ENV, Path("/tmp")) == [SHELL, "-c", command]


def test_plain_words_naming_a_program_are_executed_directly(tmp_path: Path) -> None:
    """`true`, `ls -la /tmp` and a script with a shebang run as themselves."""
    assert command_argv("true", ENV, tmp_path)[0].endswith("/true")
    argv = command_argv("ls -la /tmp", ENV, tmp_path)
    assert argv[0].endswith("/ls") and argv[1:] == ["-la", "/tmp"]
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho ok\n")
    script.chmod(0o755)
    assert command_argv("./run.sh", ENV, tmp_path) == [os.path.join(tmp_path, "./run.sh")]


def test_a_script_without_shebang_is_left_to_the_shell(tmp_path: Path) -> None:
    """The kernel cannot exec a script without #!; sh runs it, as before."""
    script = tmp_path / "plain.sh"
    script.write_text("echo plain\n")
    script.chmod(0o755)
    assert command_argv("./plain.sh", ENV, tmp_path) == [SHELL, "-c", "./plain.sh"]
