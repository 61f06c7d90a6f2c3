"""Multi-node training on Kubernetes: the train step's ranks as a Kubeflow Training Operator PyTorchJob.

    python -m pipelines.pytorchjob --config configs/k8s-multinode.yaml --dataset /shared/datasets/aclsum-base \\
        [--job-name deepsynth-train] [--namespace deepsynth] | kubectl apply -f -

prints the manifests to submit (a dry run: nothing is sent from here), after validating them with
the Kubernetes client's models: a ConfigMap with the run config's ``train`` section as JSON, and a
``kubeflow.org/v1`` PyTorchJob with one Master and ``deployment.nodes - 1`` Worker pods. Every pod
runs ``torchrun`` with c10d rendezvous on the Master (the operator sets MASTER_ADDR/MASTER_PORT)
and ``deployment.gpu_count`` ranks of :mod:`deepsynth.training.launch`; the dataset, checkpoints
and the adapter live on ``deployment.shared_volume`` (ReadWriteMany) at ``/shared``, so a pod
restarted by the operator (``backoffLimit``) resumes from the last checkpoint.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import re
import sys
from typing import Any

import yaml

from deepsynth.errors import ConfigError
from pipelines.config import RunConfig
from pipelines.env_vars import expand

SHARED = "/shared"
CONFIG_MOUNT = "/etc/deepsynth"
#: Restarts of a failed pod before the job fails; each restart resumes from the last checkpoint.
BACKOFF_LIMIT = 3


def job_train_config(config: RunConfig, job_name: str) -> dict[str, Any]:
    """The ``train`` section as the job's ranks read it: outputs and state on the shared volume, resuming."""
    run_dir = f"{SHARED}/runs/{job_name}"
    train = dataclasses.replace(
        config.train,
        output_dir=f"{run_dir}/adapter",
        state_dir=run_dir,
        deepsynth_home=f"{SHARED}/home",
        resume_from_checkpoint="latest",
        progress_bar=False,
    )
    return train.to_dict()


def _pod_template(config: RunConfig, job_name: str, dataset: str) -> dict[str, Any]:
    deploy, gpus = config.deployment, config.deployment.gpu_count
    ranks = config.train.num_processes or max(1, gpus)
    command = [
        "python",
        "-m",
        "torch.distributed.run",
        f"--nnodes={deploy.nodes}",
        f"--nproc-per-node={ranks}",
        "--rdzv-backend=c10d",
        "--rdzv-endpoint=$(MASTER_ADDR):$(MASTER_PORT)",
        f"--rdzv-id={job_name}",
        "--max-restarts=0",
        "-m",
        "deepsynth.training.launch",
        f"{CONFIG_MOUNT}/train.json",
        dataset,
        f"{SHARED}/runs/{job_name}/result.json",
        "auto",
    ]
    resources: dict[str, Any] = {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {}
    if deploy.gpu_memory:  # ZenML's "32GB" is Kubernetes' "32G" (and "32GiB" its "32Gi")
        resources.setdefault("requests", {})["memory"] = re.sub(r"([KMGTPE]i?)B$", r"\1", deploy.gpu_memory)
    image = expand(deploy.gpu_image if gpus else deploy.cpu_image, "deployment image")
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "pytorch",  # the operator looks for this container name
                "image": image,
                "command": command,
                "env": [
                    {"name": "HF_HUB_OFFLINE", "value": "1"},
                    {"name": "TOKENIZERS_PARALLELISM", "value": "false"},
                    {"name": "TORCH_NCCL_ASYNC_ERROR_HANDLING", "value": "1"},
                ],  # NCCL collectives honour the timeout
                "resources": resources,
                "volumeMounts": [
                    {"name": "shared", "mountPath": SHARED},
                    {"name": "train-config", "mountPath": CONFIG_MOUNT},
                    {"name": "dshm", "mountPath": "/dev/shm"},
                ],
            }
        ],
        "volumes": [
            {"name": "shared", "persistentVolumeClaim": {"claimName": deploy.shared_volume}},
            {"name": "train-config", "configMap": {"name": f"{job_name}-train"}},
            {"name": "dshm", "emptyDir": {"medium": "Memory"}},
        ],  # NCCL's shared memory
    }
    if gpus:
        spec["nodeSelector"] = dict(deploy.gpu_node_selector)
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return {"metadata": {"labels": {"app": "deepsynth-train", "job": job_name}}, "spec": spec}


def training_manifests(config: RunConfig, dataset: str, job_name: str, namespace: str) -> list[dict[str, Any]]:
    """The ConfigMap and PyTorchJob that train ``config`` on ``dataset`` (a path on the shared volume)."""
    deploy = config.deployment
    if not deploy.shared_volume:
        raise ConfigError(
            "deployment.shared_volume: a multi-node job needs a ReadWriteMany volume claim for the "
            "dataset, checkpoints and adapter"
        )
    if not dataset.startswith(f"{SHARED}/"):
        raise ConfigError(f"--dataset: {dataset!r} must be a rendered dataset on the shared volume ({SHARED}/...)")
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{job_name}-train", "namespace": namespace},
        "data": {"train.json": json.dumps(job_train_config(config, job_name), indent=2, sort_keys=True)},
    }
    template = _pod_template(config, job_name, dataset)
    replicas = {"Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": template}}
    if deploy.nodes > 1:
        replicas["Worker"] = {
            "replicas": deploy.nodes - 1,
            "restartPolicy": "OnFailure",
            "template": copy.deepcopy(template),
        }
    job = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": job_name, "namespace": namespace},
        "spec": {
            "nprocPerNode": str(config.train.num_processes or max(1, deploy.gpu_count)),
            "runPolicy": {"backoffLimit": BACKOFF_LIMIT, "cleanPodPolicy": "None"},
            "pytorchReplicaSpecs": replicas,
        },
    }
    return [config_map, job]


def validate(manifests: list[dict[str, Any]]) -> None:
    """Check every manifest against the Kubernetes client's models (pod templates, ConfigMap); raise ConfigError."""
    from kubernetes.client import ApiClient
    from kubernetes.utils import parse_quantity

    client = ApiClient()
    for manifest in manifests:
        kind = manifest.get("kind")
        try:
            if kind == "ConfigMap":
                client._ApiClient__deserialize(manifest, "V1ConfigMap")
            elif kind == "PyTorchJob":
                for role, replica in manifest["spec"]["pytorchReplicaSpecs"].items():
                    if replica["restartPolicy"] not in ("Always", "OnFailure", "Never", "ExitCode"):
                        raise ValueError(f"{role}: restartPolicy {replica['restartPolicy']!r}")
                    template = client._ApiClient__deserialize(replica["template"], "V1PodTemplateSpec")
                    if [c.name for c in template.spec.containers] != ["pytorch"]:
                        raise ValueError(f"{role}: the training container must be called 'pytorch'")
                    for container in template.spec.containers:
                        for amounts in (container.resources.limits or {}, container.resources.requests or {}):
                            for amount in amounts.values():
                                parse_quantity(amount)
            else:
                raise ValueError(f"unexpected kind {kind!r}")
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{kind} {manifest.get('metadata', {}).get('name')}: invalid manifest: {exc}") from None


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (the ConfigMap's JSON) as literal blocks."""


_BlockDumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None),
)


def main(argv: list[str] | None = None) -> int:
    """Render, validate and print the job's manifests (YAML documents on stdout)."""
    from pipelines.config_loading import load_run_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a run config with deployment.nodes and shared_volume")
    parser.add_argument(
        "--dataset", required=True, help=f"the rendered dataset's folder on the shared volume ({SHARED}/...)"
    )
    parser.add_argument("--job-name", default="deepsynth-train")
    parser.add_argument("--namespace", default=os.environ.get("DEEPSYNTH_K8S_NAMESPACE", "deepsynth"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    args = parser.parse_args(argv)
    try:
        manifests = training_manifests(
            load_run_config(args.config, args.set), args.dataset, args.job_name, args.namespace
        )
        validate(manifests)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(yaml.dump_all(manifests, Dumper=_BlockDumper, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
