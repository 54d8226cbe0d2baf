"""A pytest plugin for the nbval runs the notebook tests start: patience for slow output, none for a dead kernel.

- nbval waits a fixed 5 s for a cell's output once the kernel has replied; on a loaded 2-core machine the
  output can come later, which nbval reports as a failure of the notebook: it gets 60 s here.
- nbval waits up to --nbval-cell-timeout (2,000 s) for a cell's reply and never looks at the kernel
  meanwhile, so a kernel killed by a native crash (a segfault in a kernel library) held the whole test run
  for half an hour per cell. Here the wait is cut into slices of KERNEL_POLL_SECONDS, and a dead kernel
  fails its cell at once, naming how it died, with the end of the kernel's stderr (which nbval throws
  away): with PYTHONFAULTHANDLER=1, a native crash's Python stack. nbval then fails the remaining cells
  with "Kernel dead on test start".
"""
from __future__ import annotations

import signal
import tempfile
import time
from queue import Empty

import nbval.kernel
from nbval.kernel import RunningKernel

from framilab.cpucheck import crash_excerpt

OUTPUT_TIMEOUT_SECONDS = 60
KERNEL_POLL_SECONDS = 2.0
STDERR_LINES = 12

_await_reply = RunningKernel.await_reply
_start_new_kernel = nbval.kernel.start_new_kernel


class KernelDied(RuntimeError):
    """The notebook's kernel process ended while a cell was running."""


def start_new_kernel_keeping_stderr(*args, **kwargs):
    """nbval's start_new_kernel with the kernel's stderr in a temporary file instead of /dev/null."""
    kwargs["stderr"] = tempfile.TemporaryFile(mode="w+")
    km, kc = _start_new_kernel(*args, **kwargs)
    km.framilab_stderr = kwargs["stderr"]
    return km, kc


def _how_it_died(kernel: RunningKernel) -> str:
    """How the kernel process ended, and what it last wrote on stderr (from a native crash: where it was)."""
    process = getattr(kernel.km.provisioner, "process", None)
    code = process.poll() if process is not None else None
    how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
    stderr = getattr(kernel.km, "framilab_stderr", None)
    if stderr is None:
        return how
    stderr.seek(0)
    return how + "; the kernel's stderr:\n" + crash_excerpt(stderr.read(), STDERR_LINES)


def await_reply_or_death(self: RunningKernel, msg_id: str, timeout: float | None = None) -> None:
    """RunningKernel.await_reply that checks between slices of waiting whether the kernel is still alive."""
    deadline = None if timeout is None else time.monotonic() + float(timeout)
    while True:
        wait = KERNEL_POLL_SECONDS if deadline is None else min(KERNEL_POLL_SECONDS, deadline - time.monotonic())
        if wait <= 0:
            raise Empty
        try:
            return _await_reply(self, msg_id, timeout=wait)
        except Empty:
            if not self.is_alive():
                raise KernelDied(f"the kernel died while running this cell: {_how_it_died(self)}") from None


nbval.kernel.start_new_kernel = start_new_kernel_keeping_stderr
RunningKernel.await_reply = await_reply_or_death


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = OUTPUT_TIMEOUT_SECONDS
