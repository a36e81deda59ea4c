#!/usr/bin/env python3
"""Extracts from rendered Kubernetes manifests what the settings contract is checked against.

Prints JSON for `citaflow settings check --containers FILE`, which holds the contract (it is
derived from the services' `Settings` type; nothing about the Rust code is modelled here):

  * every container that runs a service binary (/usr/local/bin/ingest-api, booking-processor,
    notifier): its command, its environment (ConfigMap `envFrom` expanded, values from a Secret
    as null), whether a whole Secret is added, and its container port named `http`;
  * every `CITAFLOW__...` name mentioned anywhere in the text (ConfigMap keys, env names,
    Secret keys, comments), with file and line.

usage: chart_containers.py MANIFEST.yaml... > containers.json
"""
import json
import re
import sys

import yaml

NAME_RE = re.compile(r"\bCITAFLOW__[A-Za-z0-9_]+")
SERVICE_RE = re.compile(r"/usr/local/bin/(ingest-api|booking-processor|notifier)$")


def pod_specs(doc):
    spec = doc.get("spec") or {}
    kind = doc.get("kind")
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        yield (spec.get("template") or {}).get("spec") or {}
    elif kind == "CronJob":
        yield (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    elif kind == "Pod":
        yield spec


def containers(path):
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]
    config_maps = {d["metadata"]["name"]: d.get("data") or {} for d in docs
                   if d.get("kind") == "ConfigMap" and d.get("metadata", {}).get("name")}
    for d in docs:
        where = f'{path}: {d.get("kind")} {d.get("metadata", {}).get("name")}'
        for spec in pod_specs(d):
            for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
                command = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
                if not command or not SERVICE_RE.search(command[0]):
                    continue
                env, secret_env = {}, False
                for src in c.get("envFrom") or []:
                    ref = (src.get("configMapRef") or {}).get("name")
                    for name, raw in config_maps.get(ref, {}).items():
                        env[(src.get("prefix") or "") + name] = None if raw is None else str(raw)
                    secret_env = secret_env or bool(src.get("secretRef"))
                for e in c.get("env") or []:
                    env[e["name"]] = None if "valueFrom" in e else str(e.get("value", ""))
                http = [p.get("containerPort") for p in c.get("ports") or [] if p.get("name") == "http"]
                yield {"origin": f'{where} container {c.get("name")}',
                       "command": [command[0].rsplit("/", 1)[-1]] + command[1:],
                       "env": env, "secret_env": secret_env, "http_port": http[0] if http else None}


def mentions(path):
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            for name in NAME_RE.findall(line):
                yield {"name": name, "at": f"{path}:{lineno}"}


def main(paths):
    if not paths:
        sys.exit(__doc__.strip().splitlines()[-1])
    out = {"containers": [c for p in paths for c in containers(p)],
           "mentions": [m for p in paths for m in mentions(p)]}
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
