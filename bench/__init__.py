"""Podium benchmark suite: run with ``.venv/bin/python bench/run.py`` (see README.md)."""
