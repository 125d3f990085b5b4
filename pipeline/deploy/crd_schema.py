"""CRD → strict JSON Schema, so custom resources (ServiceMonitor, PodMonitor, ScaledObject) validate offline.

The committed schemas in k8s/schemas/ were made with:
    python -m pipeline.deploy.crd_schema CRD.yaml k8s/schemas/
"Strict" means an object that lists its `properties` rejects unknown keys (a typo such as `podMetricEndpoints`
fails), unless the CRD keeps unknown fields on purpose (`x-kubernetes-preserve-unknown-fields`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "k8s" / "schemas"


def _strict(node):
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def schema_name(group: str, kind: str, version: str) -> str:
    return f"{group}_{kind.lower()}_{version}.json"


def convert(crd: dict) -> dict[str, dict]:
    """{file name: JSON schema} for every served version of the CRD."""
    spec = crd["spec"]
    group, kind = spec["group"], spec["names"]["kind"]
    schemas = {}
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        schema = _strict(version["schema"]["openAPIV3Schema"])
        properties = schema.setdefault("properties", {})
        properties["apiVersion"] = {"const": f"{group}/{version['name']}"}
        properties["kind"] = {"const": kind}
        properties.setdefault("metadata", {"type": "object"})
        schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
        schema["$comment"] = f"{kind} {group}/{version['name']} from its CRD, unknown keys rejected"
        schemas[schema_name(group, kind, version["name"])] = schema
    return schemas


def schema_for(document: dict, schema_dir: Path = SCHEMA_DIR) -> dict | None:
    """The committed schema of a custom resource, or None for kinds without one."""
    group, _, version = document.get("apiVersion", "").rpartition("/")
    path = schema_dir / schema_name(group, document.get("kind", ""), version)
    return json.loads(path.read_text()) if group and path.is_file() else None


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m pipeline.deploy.crd_schema CRD.yaml OUT_DIR", file=sys.stderr)
        return 2
    crd_path, out_dir = Path(argv[0]), Path(argv[1])
    for name, schema in convert(yaml.safe_load(crd_path.read_text())).items():
        (out_dir / name).write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        print(f"wrote {out_dir / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
