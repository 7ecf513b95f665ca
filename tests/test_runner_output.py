"""Tests for the shared output sink: redaction before writing, line buffering, rotation, tail."""

from __future__ import annotations

from pathlib import Path

from podium.runners.output import MAX_PARTIAL, NOTE_PREFIX, TAIL_LINE_MAX, OutputSink


def _hide(text: str) -> str:
    return text.replace("hunter2", "***")


def _sink(tmp_path: Path, max_bytes: int = 1 << 20, tail_lines: int = 3) -> OutputSink:
    return OutputSink(tmp_path / "logs" / "a.log", max_bytes, _hide, tail_lines)


def test_writes_lines_and_keeps_the_last_ones_as_tail(tmp_path: Path) -> None:
    """Every line reaches the file (parent dirs created); the tail has the last N lines."""
    sink = _sink(tmp_path)
    sink.write(b"one\ntwo\nthree\nfour\nfive")
    sink.close()
    assert (tmp_path / "logs" / "a.log").read_text() == "one\ntwo\nthree\nfour\nfive"
    assert sink.tail() == "three\nfour\nfive"


def test_secret_split_across_writes_is_redacted(tmp_path: Path) -> None:
    """A secret arriving in two chunks is redacted before anything reaches the file."""
    sink = _sink(tmp_path)
    sink.write(b"pass=hun")
    assert not sink.path.exists() or sink.path.read_bytes() == b""
    sink.write(b"ter2\nnext\n")
    sink.close()
    text = sink.path.read_text()
    assert "hunter2" not in text
    assert text == "pass=***\nnext\n"
    assert "hunter2" not in sink.tail()


def test_unfinished_last_line_is_flushed_on_close(tmp_path: Path) -> None:
    """A last line without newline is redacted and written when the sink closes."""
    sink = _sink(tmp_path)
    sink.write(b"token hunter2")
    sink.close()
    assert sink.path.read_text() == "token ***"
    assert sink.tail() == "token ***"


def test_overlong_partial_line_is_flushed_before_its_newline(tmp_path: Path) -> None:
    """A line longer than the partial limit is written before its newline arrives."""
    sink = _sink(tmp_path)
    sink.write(b"x" * (MAX_PARTIAL + 10))
    assert sink.path.stat().st_size == MAX_PARTIAL + 10
    sink.close()


def test_utf8_split_across_reads_and_invalid_bytes(tmp_path: Path) -> None:
    """A multi-byte character split over two reads survives; invalid bytes are replaced."""
    sink = _sink(tmp_path)
    euro = "€".encode()
    sink.write(euro[:1])
    sink.write(euro[1:] + b"\n\xff\n")
    sink.close()
    assert sink.path.read_text() == "€\n\ufffd\n"


def test_rotation_keeps_one_previous_file_and_bounds_size(tmp_path: Path) -> None:
    """Past max_bytes the log moves to .1 (replacing an older one); each file stays capped."""
    sink = _sink(tmp_path, max_bytes=100)
    for number in range(100):
        sink.write(f"line {number:04d}\n".encode())
    sink.close()
    rotated = sink.path.with_name("a.log.1")
    assert rotated.exists()
    assert sink.path.stat().st_size <= 100
    assert rotated.stat().st_size <= 100
    assert sink.path.read_text().endswith("line 0099\n")
    assert sorted(p.name for p in sink.path.parent.iterdir()) == ["a.log", "a.log.1"]


def test_rotation_cuts_at_line_ends_even_within_one_big_write(tmp_path: Path) -> None:
    """Output read in one large chunk still rotates between lines: both files hold whole
    lines; only a line longer than the cap is cut."""
    sink = _sink(tmp_path, max_bytes=100)
    sink.write(b"".join(f"line {n:05d}\n".encode() for n in range(100)))  # 11 bytes each
    sink.close()
    current = sink.path.read_text()
    previous = sink.path.with_name("a.log.1").read_text()
    assert current.endswith("line 00099\n") and current.startswith("line ")
    assert previous.startswith("line ") and previous.endswith("\n")
    assert len(current) <= 100 and len(previous) <= 100
    long = _sink(tmp_path / "long", max_bytes=100)
    long.write(b"x" * 250 + b"\n")
    long.close()
    assert long.path.read_text() == "x" * 50 + "\n"
    assert long.path.with_name("a.log.1").read_text() == "x" * 100


def test_write_text_and_note_start_on_their_own_line(tmp_path: Path) -> None:
    """Text from a runner is buffered like bytes; a note never glues onto a partial line."""
    sink = _sink(tmp_path)
    sink.write_text("partial")
    sink.note("stopping")
    sink.close()
    assert sink.path.read_text() == f"partial\n{NOTE_PREFIX}stopping\n"


def test_tail_lines_zero_and_long_lines_are_clipped(tmp_path: Path) -> None:
    """No tail is kept when tail_lines is 0; a huge line is clipped in the tail only."""
    none = OutputSink(tmp_path / "n.log", 1 << 20, _hide, 0)
    none.write(b"a\nb\n")
    none.close()
    assert none.tail() == ""
    sink = _sink(tmp_path)
    sink.write(b"y" * (TAIL_LINE_MAX * 2) + b"\n")
    sink.close()
    assert len(sink.tail()) <= TAIL_LINE_MAX + 2
    assert sink.path.stat().st_size == TAIL_LINE_MAX * 2 + 1


def test_silent_attempt_creates_no_log_file(tmp_path: Path) -> None:
    """A task that prints nothing leaves no empty log file behind; one that prints gets one."""
    quiet = _sink(tmp_path)
    quiet.close()
    assert not quiet.path.exists()
    loud = OutputSink(tmp_path / "logs" / "b.log", 1024, lambda s: s, 5)
    loud.write(b"hello\n")
    loud.close()
    assert loud.path.read_text() == "hello\n"
