"""MLflow: two processes registering at once into one sqlite store: two different adapters get two
versions; the same adapter gets one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from safetensors.torch import load_file, save_file

from deepsynth.export import export_adapter

pytestmark = pytest.mark.slow

REGISTER = textwrap.dedent("""
    import json, os, sys, time
    import mlflow
    mlflow.set_tracking_uri(sys.argv[1])
    mlflow.set_experiment("concurrent")
    from deepsynth.registry import register, register_package
    if sys.argv[5] == "both-miss":  # neither sees the other's version before creating its own: the race
        check, calls = register._find_by_sha, []
        def first_misses(name, sha):
            calls.append(1)
            return None if len(calls) == 1 else check(name, sha)
        register._find_by_sha = first_misses
    barrier = sys.argv[4]  # both processes reach this line first, then go together
    open(os.path.join(barrier, str(os.getpid())), "w").close()
    while len(os.listdir(barrier)) < 2:
        time.sleep(0.002)
    print(json.dumps(register_package(sys.argv[2], sys.argv[3], commit="test")))
""")


def variant(adapter, root, name, scale):
    out = root / name
    out.mkdir()
    for item in adapter.iterdir():
        if item.is_file():
            (out / item.name).write_bytes(item.read_bytes())
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    scaled = {k: v * scale if "lora_B" in k else v for k, v in tensors.items()}
    save_file(scaled, str(out / "adapter_model.safetensors"))
    return out


def register_at_once(uri, export_dirs, tmp_path, race="none"):
    """Run register_package on each export dir in its own process, released together; their results.

    ``race="both-miss"`` makes each process's first look-up of the adapter's sha miss, so both create
    a version at the same time whatever the timing (the case the reconciliation exists for).
    """
    import mlflow

    mlflow.MlflowClient(uri, registry_uri=uri).search_experiments()  # the schema, as a deployed store has it
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}  # nothing left by earlier tests
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", REGISTER, uri, str(d), "concurrent-model", str(barrier), race],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=env,
        )
        for d in export_dirs
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_concurrent_registration_of_two_adapters_gives_two_distinct_versions(
    trained_adapter, rendered_dataset, tmp_path
):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exports = [
        export_adapter(
            variant(trained_adapter, tmp_path, f"a{i}", s),
            tmp_path / f"export{i}",
            dataset=rendered_dataset.path,
            metrics={"rouge_l": 0.1},
        )
        for i, s in enumerate((0.5, 0.25))
    ]
    assert exports[0].adapter_sha256 != exports[1].adapter_sha256
    results = register_at_once(uri, [e.output_dir for e in exports], tmp_path)
    assert all(r["created"] for r in results)
    assert sorted(r["version"] for r in results) == ["1", "2"]
    client = mlflow.MlflowClient(uri, registry_uri=uri)  # not a registry URI earlier tests set
    versions = {
        str(mv.version): client.get_model_version("concurrent-model", mv.version)
        for mv in client.search_model_versions("name = 'concurrent-model'")
    }
    assert sorted(versions) == ["1", "2"]
    shas = {v.tags["adapter_sha256"] for v in versions.values()}
    assert shas == {e.adapter_sha256 for e in exports}
    for r in results:  # each process's answer names the version holding its own adapter
        assert versions[r["version"]].tags["adapter_sha256"] == r["adapter_sha256"]


def test_concurrent_registration_of_the_same_adapter_gives_one_version(trained_adapter, rendered_dataset, tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    export = export_adapter(
        variant(trained_adapter, tmp_path, "same", 0.5),
        tmp_path / "export",
        dataset=rendered_dataset.path,
        metrics={"rouge_l": 0.1},
    )
    results = register_at_once(uri, [export.output_dir, export.output_dir], tmp_path, race="both-miss")
    client = mlflow.MlflowClient(uri, registry_uri=uri)  # not a registry URI earlier tests set
    assert [str(mv.version) for mv in client.search_model_versions("name = 'concurrent-model'")] == ["1"]
    assert [r["version"] for r in results] == ["1", "1"]
    assert sorted(r["created"] for r in results) == [False, True]
    assert str(client.get_model_version_by_alias("concurrent-model", "challenger").version) == "1"
