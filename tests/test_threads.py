"""The thread policy: each training process gets its share of the free cores, checked in real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from deepsynth import threads
from deepsynth.threads import ThreadPolicy, available_cores, threads_for, threads_per_process

CHILD = """
import json, os
import torch
from deepsynth.threads import apply_thread_policy, other_load
policy = apply_thread_policy()
print(json.dumps({"threads": torch.get_num_threads(), "policy": policy.threads, "busy": other_load(),
                  "cores": len(os.sched_getaffinity(0))}))
"""


def child(cpus: set[int] | None = None, **env: str) -> dict:
    """The policy's outcome in a fresh Python process (optionally pinned to ``cpus``), under ``env``."""
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "LOCAL_WORLD_SIZE")}
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env={**base, **env}, capture_output=True, text=True, timeout=120, preexec_fn=pin
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["threads"] == result["policy"]  # torch got what the policy decided
    return result


@pytest.mark.parametrize(
    "cores, processes, busy, expected",
    [
        (2, 1, None, 2),
        (2, 2, None, 1),
        (16, 4, None, 4),
        (3, 2, None, 1),
        (2, 64, None, 1),
        (2, 1, 0.3, 2),  # an idle machine: all cores
        (2, 1, 9.5, 1),  # two cores under a load of 10: one thread (two were ~8x slower here)
        (16, 2, 6.0, 5),  # ten of sixteen cores free, shared by two ranks
    ],
)
def test_free_cores_are_shared_by_the_local_processes(cores, processes, busy, expected):
    assert threads_for(cores, processes, busy) == expected


def test_an_explicit_omp_num_threads_wins_and_a_bad_one_is_ignored():
    assert threads_per_process(8, environ={"OMP_NUM_THREADS": "3"}) == 3
    for bad in ("0", "four", ""):
        assert 1 <= threads_per_process(1, environ={"OMP_NUM_THREADS": bad}) <= available_cores()


def test_the_policy_is_refreshed_during_a_run(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    policy = ThreadPolicy(1)
    try:
        assert policy.apply() == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        policy.refresh(1)  # within REFRESH_S: unchanged
        assert policy.threads == 1
        monkeypatch.setattr(threads, "REFRESH_S", 0.0)
        policy.refresh(2)
        assert policy.threads == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_setting_in_a_real_subprocess():
    alone = child()
    assert alone["threads"] == threads_for(alone["cores"], 1, alone["busy"])  # the machine's load as it saw it
    rank = child(LOCAL_WORLD_SIZE="2")  # one of two torchrun ranks
    assert rank["threads"] == threads_for(rank["cores"], 2, rank["busy"]) <= max(1, available_cores() // 2)
    assert child(LOCAL_WORLD_SIZE="2", OMP_NUM_THREADS="3")["threads"] == 3
    pinned = child(cpus={min(os.sched_getaffinity(0))})  # taskset to one core: one thread, whatever the load
    assert pinned == {"threads": 1, "policy": 1, "busy": None, "cores": 1} or (
        os.cpu_count() == 1 and pinned["threads"] == 1
    )
