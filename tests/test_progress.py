"""Progress lines on the console while a stage runs (issue 15 item 2; analysis.progress), and a
report kernel that ends quietly."""

from __future__ import annotations

import asyncio
import io
import signal
from pathlib import Path

import pytest

from analysis import progress


def _run(interval):
    buf = io.StringIO()
    with progress.shown("outcome", stream=buf, interval=interval):
        with progress.task("wemwbs_total (1/2)"):
            with progress.task("MI analysis"):
                for i in range(1, 4):
                    progress.step("imputation", i, 3)
    return buf.getvalue().splitlines()


def test_nothing_is_shown_unless_a_stage_turns_progress_on(capsys):
    with progress.task("x"):
        progress.step("y", 1, 2)
    assert capsys.readouterr() == ("", "")


def test_every_line_when_each_step_is_long():
    lines = _run(interval=0)
    assert lines[0] == "[outcome] wemwbs_total (1/2) ..."
    assert [ln.split("imputation ")[1].split(" ")[0] for ln in lines[1:4]] == ["1/3", "2/3", "3/3"]
    assert lines[1].startswith("[outcome] wemwbs_total (1/2) / MI analysis: imputation 1/3 (")
    assert lines[4].startswith("[outcome] wemwbs_total (1/2) / MI analysis done in ")
    assert lines[5].startswith("[outcome] wemwbs_total (1/2) done in ") and lines[5].endswith(" s")
    assert len(lines) == 6


def test_short_steps_and_inner_tasks_add_nothing():
    lines = _run(interval=60)
    assert [ln.split(" done in")[0] for ln in lines] == ["[outcome] wemwbs_total (1/2) ...",
                                                         "[outcome] wemwbs_total (1/2)"]


def test_a_failing_task_says_it_stopped_and_progress_is_off_afterwards():
    buf = io.StringIO()
    with pytest.raises(ZeroDivisionError):
        with progress.shown("economics", stream=buf, interval=60):
            with progress.task("cost-effectiveness"):
                1 / 0
    assert buf.getvalue().splitlines()[-1].startswith("[economics] cost-effectiveness stopped in ")
    assert not progress._state.enabled and progress._state.tasks == []


def test_elapsed():
    assert progress.elapsed(4.21) == "4.2 s"
    assert progress.elapsed(125.4) == "2 min 05 s"


def test_a_stage_shows_its_progress_on_stderr_and_in_its_log(demo_stages):
    """The stages ran inside ``logged`` (tests/stage_runner.py), as in the workflow."""
    err = demo_stages["stderr"]
    assert "[outcome] wemwbs_total (1/4) ..." in err and "[outcome] rguk_total (4/4) done in" in err
    assert "[economics] cost-effectiveness (multiple imputation, 500 bootstrap replicates) done in" in err
    log = (demo_stages["work"] / "logs/demo/outcome.log").read_text()
    assert "wemwbs_total (1/4) done in" in log


# ---- the report notebook's kernel -----------------------------------------------------------------

def _shutdown_signals(manager_class):
    signals = []

    class Recording(manager_class):
        async def _async_signal_kernel(self, signum):
            signals.append(signum)
            return await super()._async_signal_kernel(signum)

    async def start_and_stop():
        km = Recording(kernel_name="python3")
        await km.start_kernel()
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=600)
        finally:
            kc.stop_channels()
        await km.shutdown_kernel()
        return km

    return signals, asyncio.run(start_and_stop())


def test_the_report_kernel_is_not_interrupted_at_shutdown():
    """jupyter_client interrupts (SIGINT) every kernel it shuts down; papermill shuts the kernel
    down as soon as its last request is answered, so the SIGINT could land inside that
    request's handler and print 'ERROR | KeyboardInterrupt caught in kernel' on a successful
    run.  The report kernel is shut down without it, over private IPC sockets (removed after)."""
    from jupyter_client import AsyncKernelManager

    from analysis.reporting.kernel import ReportKernelManager
    stock, _ = _shutdown_signals(AsyncKernelManager)
    assert signal.SIGINT in stock  # what the report kernel avoids
    ours, km = _shutdown_signals(ReportKernelManager)
    assert signal.SIGINT not in ours
    assert km.transport == "ipc" and not Path(km.ip).parent.exists()


def test_a_report_prints_nothing_from_its_kernel(demo_stages, capfd):
    from analysis.reporting.notebook import report_from_notebook
    from stage_runner import rule_config
    files = demo_stages["files"]
    html = report_from_notebook(rule_config("audience_report", demo_stages["cfg"]), files["audience_report"][0],
                                "ethics")
    assert "Ethics committee report" in html
    err = capfd.readouterr().err
    assert "IPKernelApp" not in err and "KeyboardInterrupt" not in err and "ERROR" not in err, err
