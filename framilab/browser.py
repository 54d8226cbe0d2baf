"""Run a notebook in JupyterLab in a real headless browser, as a person would, and look at what rendered.

nbval and papermill never draw a widget; this does. It starts JupyterLab on loopback and Chromium
with a DevTools port (each in its own process group, stopped by its own PID), drives the page with
Playwright (restart kernel and run all), waits for a text the notebook prints at the end, counts
images inside widget outputs and "Error displaying widget" texts, and takes a screenshot.
Playwright's Python package only: the browser is the system's (Debian: apt-get install chromium).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .paths import resolve

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_ARGS = ("--headless=new", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-sync")
# True once the status bar's kernel item reads "... | Idle" (a connected kernel with nothing to run). The toolbar's
# execution indicator says idle before a kernel has connected, and the page's whole text could say Idle anywhere.
KERNEL_IDLE = 'document.getElementById("jp-main-statusbar")?.innerText.includes("| Idle")'


@dataclass
class PageReport:
    widget_images: int
    widget_errors: int
    toasts: int        # pop-up notifications still over the page when the screenshot was taken
    screenshot: Path
    seconds: float


def find_browser() -> str | None:
    """The system Chromium's path, or None."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float, process: subprocess.Popen) -> None:
    """Poll `url` until it answers; fail early, with the reason, if `process` dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with code {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def started(command: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """A process in its own session; on exit its whole group (it and what it started) is stopped by its PID."""
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        yield process
    finally:
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue


def run_notebook_in_jupyterlab(notebook: Path, expect_text: str, screenshot: Path, *, browser: str | None = None,
                               timeout: float = 300, focus: str = ".widget-output") -> PageReport:
    """Open `notebook` in JupyterLab, run all cells, wait until an output shows `expect_text`, report, and take a
    screenshot with the first element matching the CSS selector `focus` (its key figure) in view."""
    from playwright.sync_api import sync_playwright

    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError(f"no Chromium found (looked for {BROWSERS}); on Debian: apt-get install chromium")
    work = Path(tempfile.mkdtemp(prefix="framilab-browser-"))
    (work / "lab").mkdir()
    shutil.copy(notebook, work / "lab" / notebook.name)
    env = {**os.environ, **{key: str(work / key.lower()) for key in
                            ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR",
                             "MPLCONFIGDIR", "JUPYTERLAB_SETTINGS_DIR")}}
    # No "get notified about Jupyter news?" toast and no update check: nothing may cover the dashboard.
    notification = work / "jupyterlab_settings_dir" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    lab_port, cdp_port = free_port(), free_port()
    jupyter = [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", "--ip", "127.0.0.1",
               f"--port={lab_port}", "--IdentityProvider.token=", "--ServerApp.password=",
               f"--ServerApp.root_dir={work / 'lab'}", "--LabApp.news_url="]
    chromium = [browser, *CHROMIUM_ARGS, f"--remote-debugging-port={cdp_port}", f"--user-data-dir={work / 'chromium'}",
                "about:blank"]
    t0 = time.perf_counter()
    try:
        with started(jupyter, work / "jupyterlab.log", env) as lab, started(chromium, work / "chromium.log") as chrome:
            wait_for_http(f"http://127.0.0.1:{lab_port}/api/status", 60, lab)
            wait_for_http(f"http://127.0.0.1:{cdp_port}/json/version", 30, chrome)
            with sync_playwright() as pw:
                page = pw.chromium.connect_over_cdp(f"http://127.0.0.1:{cdp_port}").contexts[0].new_page()
                page.set_viewport_size({"width": 1400, "height": 1600})
                page.goto(f"http://127.0.0.1:{lab_port}/lab/tree/{notebook.name}?reset")
                page.wait_for_function(KERNEL_IDLE, timeout=90_000)
                page.click("text=Kernel")
                page.click("text=Restart Kernel and Run All Cells…")
                page.click(".jp-Dialog-button.jp-mod-accept")
                page.locator(".jp-OutputArea-output", has_text=expect_text).first.wait_for(timeout=timeout * 1000)
                page.wait_for_function(KERNEL_IDLE, timeout=60_000)
                decline = page.get_by_role("button", name="No", exact=True)
                if page.get_by_text("Would you like to get notified").count() and decline.count():
                    decline.last.click()
                images = page.locator(".widget-output img").count()
                errors = page.get_by_text("Error displaying widget").count()
                toasts = page.locator(".Toastify__toast").count()
                page.locator(focus).first.scroll_into_view_if_needed()
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot))
    except Exception as err:
        logs = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(work.glob("*.log")))
        raise RuntimeError(f"{err}\n{logs}") from err
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return PageReport(images, errors, toasts, screenshot, time.perf_counter() - t0)


# What each notebook prints once its main cell is done (the browser waits for it), and where its key figure is:
# the stage notebooks' live widget, the benchmark's table (its accuracy-against-time figure follows it).
FINISHED = {"teacher": "teacher test accuracy", "inversion": "ms per generator step",
            "distillation": "student accuracy", "benchmark": "Regenerate: make benchmark"}
FOCUS = {"teacher": ".widget-output", "inversion": ".widget-output", "distillation": ".widget-output",
         "benchmark": ".jp-OutputArea-output table"}


def stage_in_jupyterlab(stage: str, screenshot: Path, *, timeout: float = 600, **parameters: Any) -> PageReport:
    """Notebook `stage` with `parameters` (papermill-injected; a chain stage starts over), run in JupyterLab
    until its main cell prints its result."""
    import papermill

    from .run import STAGES, check_parameters, notebook_path

    parameters = {"figures_dir": None, **({"overwrite": True} if stage in STAGES else {}), **parameters}
    check_parameters(stage, parameters)
    with tempfile.TemporaryDirectory() as folder:
        notebook = Path(folder) / f"{notebook_path(stage).stem}_live.ipynb"
        papermill.execute_notebook(str(notebook_path(stage)), str(notebook), parameters=parameters,
                                   prepare_only=True)
        return run_notebook_in_jupyterlab(notebook, FINISHED[stage], screenshot, timeout=timeout,
                                          focus=FOCUS[stage])


def main() -> None:
    """The README's screenshots: each notebook at its classroom settings in JupyterLab, one chain in
    runs/screenshot (notebook 01's teacher, 02's pool of it, 03's student, 04's table on 01's teacher), the key
    figure of each."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--stages", nargs="+", choices=list(FINISHED), default=list(FINISHED))
    parser.add_argument("--run-dir", default="runs/screenshot", help="the chain's folder")
    parser.add_argument("--out", type=Path, default=Path("figures"), help="writes jupyterlab_live_<stage>.png here")
    args = parser.parse_args()
    run_dir = resolve(args.run_dir)
    parameters = {stage: {"run_dir": str(run_dir)} for stage in FINISHED}
    parameters["inversion"].update(rounds=6, warmup=3, gallery_rounds=0)
    parameters["benchmark"] = {"root": str(run_dir / "benchmark"), "teachers": {"synthetic": str(run_dir / "teacher")}}
    for stage in args.stages:
        report = stage_in_jupyterlab(stage, resolve(args.out / f"jupyterlab_live_{stage}.png"), **parameters[stage])
        print(f"{stage}: {report.widget_images} widget images, {report.widget_errors} widget errors, "
              f"{report.toasts} pop-ups, {report.seconds:.0f} s: {report.screenshot}")


if __name__ == "__main__":
    main()
