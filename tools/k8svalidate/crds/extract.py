#!/usr/bin/env python3
"""Vendors the openAPIV3Schema of CRD versions for k8svalidate.

usage: extract.py SOURCE_LABEL CRD.yaml [VERSION ...]

Writes <group>_<kind>_<version>.json next to this script for each served version of the CRD
(or only the versions named), without the `description` texts. SOURCE_LABEL records where the
CRD came from (operator and release), see README.md.
"""
import json
import os
import sys

import yaml


def strip(schema):
    """Drops `description` from a schema node and its sub-schemas (not from `properties`,
    whose keys are field names: CNPG's Cluster has a field called `description`)."""
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "description":
            continue
        if key in ("properties", "patternProperties", "definitions"):
            value = {name: strip(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            value = strip(value)
        elif key in ("oneOf", "anyOf", "allOf"):
            value = [strip(sub) for sub in value]
        out[key] = value
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    source, path, wanted = sys.argv[1], sys.argv[2], set(sys.argv[3:])
    with open(path) as f:
        crd = next(d for d in yaml.safe_load_all(f) if d and d.get("kind") == "CustomResourceDefinition")
    spec = crd["spec"]
    here = os.path.dirname(os.path.abspath(__file__))
    for version in spec["versions"]:
        if not version.get("served") or (wanted and version["name"] not in wanted):
            continue
        out = {
            "group": spec["group"],
            "version": version["name"],
            "kind": spec["names"]["kind"],
            "source": source,
            "schema": strip(version["schema"]["openAPIV3Schema"]),
        }
        name = f'{spec["group"]}_{spec["names"]["kind"].lower()}_{version["name"]}.json'
        with open(os.path.join(here, name), "w") as f:
            json.dump(out, f, indent=1, sort_keys=True)
            f.write("\n")
        print(name)


if __name__ == "__main__":
    main()
