"""Vigil's benchmarks (DESIGN §10): `python -m benchmarks --help`.

Programmatic use: ``report = await benchmarks.run(benchmarks.Options.quick_run())``.

The names are imported lazily, so `python -m benchmarks.floor` (a floor server's own
process) loads only the frameworks, not Vigil.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Options", "format_table", "run"]


def __getattr__(name: str) -> Any:
    if name == "format_table":
        from benchmarks.table import format_table

        return format_table
    if name == "Options":
        from benchmarks.options import Options

        return Options
    if name == "run":
        from benchmarks.runner import run

        return run
    raise AttributeError(f"module 'benchmarks' has no attribute {name!r}")
