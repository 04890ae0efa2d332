"""Recovery after a run was killed: remove Snakemake's lock when no run holds it any more.

Snakemake locks its working directory (``.snakemake/locks/``) while it runs and removes the
lock when it ends; a run killed with ``kill -9`` (or a power cut) leaves the lock behind and
every later run stops with "Directory cannot be locked".  ``pathways.sh run`` and ``demo`` call
this module first: if lock files exist but no Snakemake process (or job started by one) is
working in that directory, the lock is stale and is removed (what ``snakemake --unlock`` does);
the run itself then passes ``--rerun-incomplete`` so the outputs the killed run left half-made
are made again.  While a Snakemake process *is* working there the lock is left alone, and
Snakemake refuses the second run as before.

    python -m analysis.runlock [snakemake options]   # the working directory comes from -d/--directory

A process counts as a Snakemake run in the directory if its command line mentions snakemake
and its current directory, or its ``-d/--directory`` argument, is that directory.  Processes
are read from ``/proc`` (Linux); a process whose details cannot be read (another user's) is
assumed to hold the lock, so the lock is only ever removed when it is certainly stale.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

LOCK_NAME = re.compile(r"^[0-9]+\.(input|output)\.lock$")


def workdir_from_args(args: list[str], cwd: str | Path | None = None) -> Path:
    """Snakemake's working directory for these command-line options (``-d``/``--directory``)."""
    cwd = Path(cwd or os.getcwd())
    wd = None
    for i, a in enumerate(args):
        if a in ("-d", "--directory") and i + 1 < len(args):
            wd = args[i + 1]
        elif a.startswith("--directory="):
            wd = a.split("=", 1)[1]
        elif a.startswith("-d") and len(a) > 2 and not a.startswith("--"):
            wd = a[2:]
    return (cwd / wd).resolve() if wd else cwd.resolve()


def lock_files(workdir: Path) -> list[Path]:
    d = Path(workdir) / ".snakemake" / "locks"
    return sorted(p for p in d.iterdir() if LOCK_NAME.match(p.name)) if d.is_dir() else []


def _ancestors() -> set[int]:
    """This process and its parents (the pathways.sh shell that started us is not a run)."""
    out, pid = set(), os.getpid()
    while pid > 1 and pid not in out:
        out.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


def live_runs(workdir: Path, proc: Path = Path("/proc")) -> list[int]:
    """PIDs of processes that may be a Snakemake run (or one of its jobs) in ``workdir``."""
    workdir = Path(workdir).resolve()
    mine = _ancestors()
    found = []
    for entry in proc.iterdir() if proc.is_dir() else []:
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            argv = [a.decode("utf-8", "replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue  # ended meanwhile, or a kernel thread
        if not any("snakemake" in a for a in argv):
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            found.append(int(entry.name))  # cannot tell where it works: assume here
            continue
        if cwd == workdir or workdir_from_args(argv[1:], cwd) == workdir:
            found.append(int(entry.name))
    return sorted(found)


def recover(workdir: Path, out=sys.stderr) -> bool:
    """Remove a stale lock in ``workdir``; True if one was removed."""
    locks = lock_files(workdir)
    if not locks:
        return False
    live = live_runs(workdir)
    if live:
        print(f"pathways: another Snakemake run is working in {workdir} (process {', '.join(map(str, live))}); "
              "its lock is kept", file=out)
        return False
    for p in locks:
        p.unlink(missing_ok=True)
    print(f"pathways: removed a stale lock in {workdir}/.snakemake/locks left by a run that ended without "
          "cleaning up (no Snakemake process is running there); incomplete outputs will be remade", file=out)
    return True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    recover(workdir_from_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
