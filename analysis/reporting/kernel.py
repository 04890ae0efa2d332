"""The Jupyter kernel manager the report notebook runs under: quiet when all is well.

jupyter_client's shutdown always interrupts the kernel (SIGINT) before asking it to shut down.
papermill ends a run by asking the kernel for its info and shuts it down as soon as the reply
arrives, which can be before the kernel has left that request's handler; the SIGINT then raises
KeyboardInterrupt inside the handler and the kernel prints ``ERROR | KeyboardInterrupt caught in
kernel`` on the console of a run that succeeded (more often on a busy machine).  Nothing is
running when the report notebook's kernel is shut down, so :class:`ReportKernelManager` skips
that interrupt; a kernel that does not stop is still killed after the usual grace period.

It also talks to the kernel over local (IPC) sockets in a private temporary folder (mode 0700)
instead of unencrypted TCP on localhost, which other local users could reach and which the
kernel warns about on every start.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from jupyter_client import AsyncKernelManager


class ReportKernelManager(AsyncKernelManager):
    def __init__(self, **kwargs):
        self._socket_dir = tempfile.mkdtemp(prefix="pathways-kernel-")  # mode 0700
        kwargs.update(transport="ipc", ip=os.path.join(self._socket_dir, "kernel"))
        super().__init__(**kwargs)

    async def _async_interrupt_kernel(self) -> None:
        if self.shutting_down:  # shutdown_kernel's interrupt: nothing is running to interrupt
            return
        await super()._async_interrupt_kernel()

    interrupt_kernel = _async_interrupt_kernel

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    cleanup_resources = _async_cleanup_resources

