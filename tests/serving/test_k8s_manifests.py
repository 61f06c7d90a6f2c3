"""The Kubernetes manifests of configs/serving/k8s validate against the Kubernetes client's models and point
at what the server really serves (readiness, liveness, metrics port and path, the queue-length metric)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes.client import ApiClient
from kubernetes.utils import parse_quantity
from support.serving_client import call

from deepsynth.serving.config import ServeConfig
from deepsynth.serving.server import ModelServer

MANIFESTS = Path(__file__).parents[2] / "configs" / "serving" / "k8s" / "deepsynth-serve.yaml"
MODELS = {"Deployment": "V1Deployment", "Service": "V1Service", "HorizontalPodAutoscaler": "V2HorizontalPodAutoscaler"}


@pytest.fixture(scope="module")
def server(packages, shared_home):
    served = ModelServer(ServeConfig(poll_interval_s=0), home=shared_home).start([str(packages[0].package_path)])
    yield served
    served.stop()


def test_the_manifests_validate_and_match_the_server(url):
    documents = list(yaml.safe_load_all(MANIFESTS.read_text()))
    client = ApiClient()
    parsed = {d["kind"]: client._ApiClient__deserialize(d, MODELS[d["kind"]]) for d in documents}
    assert set(parsed) == set(MODELS)
    deployment, service, autoscaler = (parsed[k] for k in MODELS)

    pod = deployment.spec.template
    assert deployment.spec.selector.match_labels == pod.metadata.labels == service.spec.selector
    (container,) = pod.spec.containers
    assert container.args[:2] == ["deepsynth", "serve"] and "0.0.0.0" in container.args
    port = int(container.args[container.args.index("--port") + 1])
    assert (
        [p.container_port for p in container.ports] == [port] == [int(pod.metadata.annotations["prometheus.io/port"])]
    )
    assert service.spec.ports[0].target_port == container.ports[0].name
    for amounts in (container.resources.requests, container.resources.limits):
        for amount in amounts.values():
            parse_quantity(amount)

    probes = {"readiness": container.readiness_probe.http_get.path, "liveness": container.liveness_probe.http_get.path}
    assert probes == {"readiness": "/readyz", "liveness": "/healthz"}
    assert pod.metadata.annotations["prometheus.io/scrape"] == "true"
    metric = autoscaler.spec.metrics[0].pods.metric.name
    assert autoscaler.spec.scale_target_ref.name == deployment.metadata.name

    # What the manifests name exists on a running server: the probe paths answer 200, /metrics has the metric.
    for path in probes.values():
        assert call(f"{url}{path}")[0] == 200
    status, _, text = call(f"{url}{pod.metadata.annotations['prometheus.io/path']}")
    assert status == 200 and f"\n{metric} " in text
    assert int(container.args[container.args.index("--max-loras") + 1]) >= 1


def test_the_manifest_options_are_serve_options():
    from click.testing import CliRunner

    from deepsynth_cli.serve import serve

    args = next(d for d in yaml.safe_load_all(MANIFESTS.read_text()) if d["kind"] == "Deployment")
    args = args["spec"]["template"]["spec"]["containers"][0]["args"][2:]
    options = {o for p in serve.params for o in p.opts}
    assert {a for a in args if a.startswith("--")} <= options
    assert ServeConfig().port == 8080 and CliRunner().invoke(serve, ["--help"]).exit_code == 0
