"""A pytest plugin for the nbval runs the notebook tests start: 60 s of patience for a cell's output.

nbval waits a fixed 5 s for a cell's output once the kernel has replied; on a loaded 2-core machine
the output can come later, which nbval reports as a failure of the notebook.
"""
from __future__ import annotations

OUTPUT_TIMEOUT_SECONDS = 60


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = OUTPUT_TIMEOUT_SECONDS
