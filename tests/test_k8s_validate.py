"""Offline validation of every rendered overlay: core kinds against the Kubernetes JSON schemas
(kubernetes-validate, strict), custom resources against the CRD schemas committed in k8s/schemas/. Each
validator is also shown to reject a broken manifest, yamllint's config included (`make lint`, which `make test`
runs first, passes yamllint over k8s/ and the compose file)."""

from __future__ import annotations

import copy
import functools
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

from pipeline.deploy.crd_schema import SCHEMA_DIR, convert, schema_for
from pipeline.deploy.render import K8S_ROOT, golden_documents
from pipeline.profiles import REPO_ROOT

K8S_VERSION = "1.32.0"  # the kubectl/kustomize release on the development machines and CI
CRD_KINDS = {"ScaledObject", "PodMonitor", "ServiceMonitor"}
# kubernetes-validate parses its 1.3 MB _definitions.json again on every call (35 ms a document); the schema
# files do not change within a run
kubernetes_validate.utils.schema_contents = functools.cache(kubernetes_validate.utils.schema_contents)


RENDERED = sorted(p.stem for p in (REPO_ROOT / "k8s" / "rendered").glob("*.yaml"))  # every profile x engine



def validate(doc: dict) -> None:
    """Raise if `doc` is invalid: a committed CRD schema when one exists, else the core schema (strict)."""
    schema = schema_for(doc)
    if schema is not None:
        jsonschema.validate(doc, schema)
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _doc(docs: list[dict], kind: str) -> dict:
    return copy.deepcopy(next(d for d in docs if d["kind"] == kind))


@pytest.mark.parametrize("name", RENDERED)
def test_every_rendered_document_validates(name):
    docs = golden_documents(name)
    for doc in docs:
        validate(doc)
    assert CRD_KINDS <= {d["kind"] for d in docs}


def test_every_crd_kind_has_a_committed_schema():
    kinds = {d["kind"] for d in golden_documents("h200x2") if schema_for(d) is not None}
    assert kinds == CRD_KINDS


@pytest.mark.parametrize("mutate, message", [
    (lambda docs: {**_doc(docs, "Deployment"), "spec": {**_doc(docs, "Deployment")["spec"], "replicas": "two"}},
     "'two' is not of type"),
    (lambda docs: _set(_doc(docs, "Service"), ["spec", "prots"], []), "'prots' was unexpected"),
    (lambda docs: _set(_doc(docs, "PodDisruptionBudget"), ["spec", "maxUnavailable"], [1]), "is not valid"),
])
def test_core_validation_rejects_broken_manifests(mutate, message):
    with pytest.raises(kubernetes_validate.ValidationError, match=message):
        kubernetes_validate.validate(mutate(golden_documents("h200x2")), K8S_VERSION, strict=True)


@pytest.mark.parametrize("kind, path, value, message", [
    ("ScaledObject", ["spec", "minReplicaCount"], "one", "is not of type 'integer'"),
    ("ScaledObject", ["spec", "triggerz"], [], "'triggerz' was unexpected"),
    ("PodMonitor", ["spec", "podMetricEndpoints"], [], "'podMetricEndpoints' was unexpected"),
    ("ServiceMonitor", ["spec", "endpoints", 0, "interval"], "15 seconds", "does not match"),
])
def test_crd_schemas_reject_broken_custom_resources(kind, path, value, message):
    doc = _set(_doc(golden_documents("h200x2"), kind), path, value)
    with pytest.raises(jsonschema.ValidationError, match=message):
        validate(doc)


def _set(doc: dict, path: list, value) -> dict:
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def test_crd_conversion_is_strict_and_pins_kind():
    crd = {"spec": {"group": "example.com", "names": {"kind": "Widget"}, "versions": [{
        "name": "v1", "served": True, "schema": {"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]}}
    schema = convert(crd)["example.com_widget_v1.json"]
    good = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {}, "spec": {"size": 1},
            "status": {"anything": 1}}
    jsonschema.validate(good, schema)
    for broken in ({**good, "spec": {"sise": 1}}, {**good, "kind": "Gadget"}, {**good, "apiVersion": "example.com/v2"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def test_committed_schemas_are_the_ones_the_lookup_uses():
    names = sorted(p.name for p in SCHEMA_DIR.glob("*.json"))
    assert names == ["keda.sh_scaledobject_v1alpha1.json", "monitoring.coreos.com_podmonitor_v1.json",
                     "monitoring.coreos.com_servicemonitor_v1.json"]


def _yamllint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yamllint", "-f", "parsable", "-c", str(K8S_ROOT / ".yamllint.yaml"),
                           *map(str, paths)], capture_output=True, text=True)


@pytest.mark.integration
def test_yamllint_rejects_a_broken_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\na: 2\nb:   [x,y]\n")
    result = _yamllint(bad)
    assert result.returncode != 0
    assert "duplication of key" in result.stdout
