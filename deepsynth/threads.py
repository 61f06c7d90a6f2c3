"""How many intra-op threads a training process uses: its share of the cores no one else is using.

Torch's default (one thread per core) is right for one process alone on an idle machine. Several
processes that each take every core (the ranks of a data-parallel run, two runs at once, other
users' jobs) oversubscribe it, and torch's threads then wait for each other: on this project's
2-core machine under load, one process with 2 threads trained ~8x slower than with 1. So each
process gets ``free cores // local processes`` threads, at least 1, where the free cores are those
it may run on (CPU affinity, e.g. ``taskset``; a container's CPU quota) minus the machine's other
runnable work (the 1-minute load average, counted only when those cores are the whole machine,
since a container sees its host's load). A training loop re-applies the policy every
``REFRESH_S`` seconds, so a run started on an idle machine steps back when another starts. An
explicit ``OMP_NUM_THREADS`` wins: it is how an operator pins runs that share a machine.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from deepsynth.env import local_world_size

#: cgroup v2 CPU quota of a container ("max 100000" means none).
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
#: Seconds between two re-evaluations of the policy during training.
REFRESH_S = 30.0


def available_cores() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota when one is set."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota readable: the affinity is the limit
    return max(1, cores)


def other_load(own_threads: float = 0.0) -> float | None:
    """Runnable work of other processes on this process's cores (1-minute load average minus our own).

    None when the load average says nothing about those cores: restricted by affinity or a quota to
    part of a machine (a container sees its host's load), or no load average on this platform.
    """
    if available_cores() != (os.cpu_count() or 1) or not hasattr(os, "getloadavg"):
        return None
    return max(0.0, os.getloadavg()[0] - own_threads)


def threads_for(cores: int, local_processes: int, busy: float | None) -> int:
    """The policy itself: free cores (``cores`` minus ``busy`` other work) shared by ``local_processes``, at least 1."""
    free = cores if busy is None else max(1, cores - round(busy))
    return max(1, free // max(1, local_processes))


def threads_per_process(
    local_processes: int = 1, environ: dict[str, str] | None = None, own_threads: float = 0.0
) -> int:
    """Intra-op threads for one of ``local_processes`` processes of a run on this machine.

    Args:
        local_processes: Processes of this run on this machine.
        environ: Where to look for ``OMP_NUM_THREADS``, which wins when set (default: this process's environment).
        own_threads: Threads this run already keeps busy (not counted as other work).
    """
    environ = os.environ if environ is None else environ
    explicit = environ.get("OMP_NUM_THREADS", "").strip()
    if explicit.isdigit() and int(explicit) > 0:
        return int(explicit)
    return threads_for(available_cores(), local_processes, other_load(own_threads))


class ThreadPolicy:
    """Applies :func:`threads_per_process` to torch now and again every ``REFRESH_S`` seconds.

    Args:
        local_processes: Processes of this run on this machine; default ``LOCAL_WORLD_SIZE`` (set by
            torchrun) or 1.
        environ: Where an explicit ``OMP_NUM_THREADS`` is looked up (default: this process's
            environment; ``{}`` ignores one a launcher set only to size the start-up thread pool).
    """

    def __init__(self, local_processes: int | None = None, environ: dict[str, str] | None = None):
        if local_processes is None:
            local_processes = local_world_size()
        self.local_processes = local_processes
        self.environ = environ
        self.threads = 0
        self._applied_at = 0.0

    def apply(self) -> int:
        """Set torch's intra-op threads from the machine's state now; returns the number."""
        import torch

        own = float(self.threads * self.local_processes)  # this run's threads are in the load average
        self.threads = threads_per_process(self.local_processes, self.environ, own_threads=own)
        torch.set_num_threads(self.threads)
        self._applied_at = time.monotonic()
        return self.threads

    def refresh(self, *_: object) -> None:
        """Re-apply when ``REFRESH_S`` has passed (a trainer's ``on_step`` callback)."""
        if time.monotonic() - self._applied_at >= REFRESH_S:
            self.apply()


def apply_thread_policy(local_processes: int | None = None, environ: dict[str, str] | None = None) -> ThreadPolicy:
    """Set torch's intra-op threads for this process by the policy; returns the policy to refresh.

    Args:
        local_processes: See :class:`ThreadPolicy`.
        environ: See :class:`ThreadPolicy`.
    """
    policy = ThreadPolicy(local_processes, environ)
    policy.apply()
    return policy
