"""Vigil's benchmarks (DESIGN §10): `python -m benchmarks --help`.

In-process use: ``report = await benchmarks.run(benchmarks.Options.quick_run())``.
"""

from benchmarks.report import format_table
from benchmarks.runner import Options, run

__all__ = ["Options", "format_table", "run"]
