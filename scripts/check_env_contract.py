#!/usr/bin/env python3
"""Checks that rendered Kubernetes manifests honour the services' configuration contract.

The contract is the `Settings` struct of platform/src/settings.rs: every service reads
`CITAFLOW__<SECTION>__<FIELD>` environment variables (lower-cased field names of `Settings`
and of its section structs) through figment, and refuses unknown names. This script derives
the valid names from settings.rs itself, so a field added, renamed or removed there is seen
on the next run, and fails when a manifest:

  * names a `CITAFLOW__...` variable that is not a field of Settings (anywhere in the text:
    ConfigMap keys, env names, Secret keys, comments);
  * gives one a value of the wrong shape, read the way figment reads environment values
    (`+34600000000` is an integer to figment, so a String field refuses it; `[1,2]` is a
    list; `true` a boolean; enums take their variant names);
  * runs a service container without the settings it cannot start without, or with an HTTP
    port that is not the container's `http` port.

usage: check_env_contract.py [--settings platform/src/settings.rs] [--list] MANIFEST.yaml...
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = "CITAFLOW__"
NAME_RE = re.compile(r"\bCITAFLOW__[A-Za-z0-9_]+")

# What each binary needs at start-up beyond the defaults (settings.rs and the services' mains).
REQUIRED = {
    "ingest-api": ["CITAFLOW__DATABASE__URL", "CITAFLOW__AUTH__JWT_SECRET"],
    "booking-processor": ["CITAFLOW__DATABASE__URL"],
    "notifier": ["CITAFLOW__DATABASE__URL", "CITAFLOW__NOTIFIER__CHANNEL"],
}
SERVICES = ("ingest-api", "booking-processor", "notifier")


# --------------------------------------------------------------------------------------------
# settings.rs
# --------------------------------------------------------------------------------------------

def strip_comments(src):
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    return re.sub(r"//[^\n]*", "", src)


def rename(name, rule):
    """serde's rename_all, for the rules a settings file plausibly uses."""
    if not rule:
        return name
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", name) if not "_" in name else name.split("_")
    lower = [w.lower() for w in words]
    return {
        "lowercase": name.lower(),
        "UPPERCASE": name.upper(),
        "snake_case": "_".join(lower),
        "SCREAMING_SNAKE_CASE": "_".join(lower).upper(),
        "kebab-case": "-".join(lower),
        "camelCase": lower[0] + "".join(w.capitalize() for w in lower[1:]),
        "PascalCase": "".join(w.capitalize() for w in lower),
    }.get(rule, name)


def serde_args(attrs):
    """key → value of every `#[serde(...)]` argument in a block of attributes."""
    out = {}
    for body in re.findall(r"#\[serde\((.*?)\)\]", attrs, flags=re.S):
        for m in re.finditer(r'(\w+)\s*(?:=\s*"([^"]*)")?', body):
            key, value = m.group(1), m.group(2)
            if key == "alias":
                out.setdefault("alias", []).append(value)
            else:
                out[key] = value if value is not None else True
    return out


def split_top(body):
    """Splits a struct body on the commas outside <>, (), [] and attributes."""
    parts, depth, cur = [], 0, []
    for c in body:
        if c in "<([":
            depth += 1
        elif c in ">)]":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def parse_settings(path):
    """Structs (name → {field: (type, names)}) and enums (name → variants) of settings.rs."""
    src = strip_comments(open(path, encoding="utf-8").read())
    structs, enums = {}, {}
    item = re.compile(r"((?:#\[[^\]]*\]\s*)*)pub\s+(struct|enum)\s+(\w+)(?:<[^>]*>)?\s*\{", re.S)
    for m in item.finditer(src):
        attrs, kind, name = m.group(1), m.group(2), m.group(3)
        depth, i = 1, m.end()
        while depth and i < len(src):
            depth += {"{": 1, "}": -1}.get(src[i], 0)
            i += 1
        body = src[m.end():i - 1]
        rule = serde_args(attrs).get("rename_all")
        if kind == "enum":
            variants = []
            for vm in re.finditer(r"((?:#\[[^\]]*\]\s*)*)(\w+)\s*(?:,|$|\(|\{)", body):
                args = serde_args(vm.group(1))
                if args.get("skip") or args.get("skip_deserializing"):
                    continue
                variants.append(args.get("rename") or rename(vm.group(2), rule))
                variants += args.get("alias", [])
            enums[name] = variants
            continue
        fields = {}
        for chunk in split_top(body):
            fm = re.fullmatch(r"\s*((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?(\w+)\s*:\s*(.+?)\s*", chunk, re.S)
            if not fm:
                continue
            args = serde_args(fm.group(1))
            if args.get("skip") or args.get("skip_deserializing"):
                continue
            field, typ = fm.group(2), re.sub(r"\s+", "", fm.group(3))
            if args.get("flatten"):
                fields.setdefault("<flatten>", []).append(typ)
                continue
            names = [args.get("rename") or rename(field, rule)] + args.get("alias", [])
            fields[field] = (typ, names)
        structs[name] = fields
    return structs, enums


def unwrap(typ):
    """Option<T> → T (figment leaves a missing value None; a set one is T)."""
    m = re.fullmatch(r"(?:std::option::)?Option<(.+)>", typ)
    return unwrap(m.group(1)) if m else typ


def valid_settings(path):
    """Environment name → expected type, derived from struct Settings."""
    structs, enums = parse_settings(path)
    if "Settings" not in structs:
        sys.exit(f"check_env_contract: no `pub struct Settings` in {path}")
    out = {}

    def walk(struct, prefix, seen):
        fields = structs[struct]
        for typ in fields.get("<flatten>", []):
            walk(unwrap(typ), prefix, seen)
        for field, spec in fields.items():
            if field == "<flatten>":
                continue
            typ, names = spec
            inner = unwrap(typ)
            for n in names:
                env = prefix + n.upper()
                if inner in structs and inner not in seen:
                    walk(inner, env + "__", seen | {inner})
                else:
                    out[env] = inner
    walk("Settings", PREFIX, {"Settings"})
    return out, enums


# --------------------------------------------------------------------------------------------
# figment's reading of an environment value (figment::value::parse, 0.10)
# --------------------------------------------------------------------------------------------

class _Fail(Exception):
    pass


INT_RE = re.compile(r"[+-]?[0-9]+")
FLOAT_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|infinity|nan)", re.I)


def figment_value(text):
    """Returns the value figment makes of an environment variable: bool, int, float, str, list
    or dict. Like figment, falls back to the whole text as a string when it does not parse."""
    pos = 0

    def ws():
        nonlocal pos
        while pos < len(text) and text[pos] in " \t\n\r\f\v":
            pos += 1

    def value():
        nonlocal pos
        ws()
        if text.startswith("true", pos):
            pos += 4
            v = True
        elif text.startswith("false", pos):
            pos += 5
            v = False
        elif text.startswith("{", pos):
            v = collection("{", "}", keyed=True)
        elif text.startswith("[", pos):
            v = collection("[", "]", keyed=False)
        elif text.startswith('"', pos):
            v = string()
        elif text.startswith("'", pos):
            if pos + 2 >= len(text) or text[pos + 2] != "'":
                raise _Fail
            v, pos = text[pos + 1], pos + 3
        else:
            start = pos
            while pos < len(text) and text[pos] not in ",{}[]":
                pos += 1
            raw = text[start:pos].strip()
            if "." in raw and FLOAT_RE.fullmatch(raw):
                v = float(raw)
            elif INT_RE.fullmatch(raw):
                v = int(raw)
            else:
                v = raw
        ws()
        return v

    def string():
        nonlocal pos
        pos += 1
        out, escaped = [], False
        while pos < len(text):
            c = text[pos]
            if escaped:
                out.append({"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}.get(c, c))
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                pos += 1
                return "".join(out)
            else:
                out.append(c)
            pos += 1
        raise _Fail

    def collection(open_, close, keyed):
        nonlocal pos
        pos += 1
        items = {} if keyed else []
        ws()
        if text.startswith(close, pos):
            pos += 1
            return items
        while True:
            if keyed:
                ws()
                if text.startswith('"', pos):
                    key = string()
                else:
                    m = re.compile(r"[A-Za-z0-9_-]+").match(text, pos)
                    if not m:
                        raise _Fail
                    key, pos = m.group(0), m.end()
                ws()
                if not text.startswith("=", pos):
                    raise _Fail
                pos += 1
                items[key] = value()
            else:
                items.append(value())
            if text.startswith(",", pos):
                pos += 1
                continue
            if text.startswith(close, pos):
                pos += 1
                return items
            raise _Fail

    try:
        v = value()
        if pos != len(text):
            raise _Fail
        return v
    except _Fail:
        return text


UINT_BITS = {"u8": 8, "u16": 16, "u32": 32, "u64": 64, "usize": 64, "u128": 128}
INT_BITS = {"i8": 8, "i16": 16, "i32": 32, "i64": 64, "isize": 64, "i128": 128}
STRINGS = {"String", "SecretString", "secrecy::SecretString", "PathBuf", "std::path::PathBuf"}


def type_problem(value, typ, enums):
    """Why figment's `value` cannot become a `typ`, or None."""
    typ = unwrap(typ)
    m = re.fullmatch(r"Vec<(.+)>", typ)
    if m:
        if not isinstance(value, list):
            return f"expected a list like [1,2], figment reads {value!r}"
        for item in value:
            p = type_problem(item, m.group(1), enums)
            if p:
                return f"list item: {p}"
        return None
    if typ in STRINGS:
        if isinstance(value, str):
            return None
        return (f"a string setting, but figment reads {value!r} as {type(value).__name__}: "
                'wrap it in double quotes inside the value (e.g. "\\"+34600000000\\"")')
    if typ == "char":
        return None if isinstance(value, str) and len(value) == 1 else f"expected one character, got {value!r}"
    if typ == "bool":
        return None if isinstance(value, bool) else f"expected true or false, got {value!r}"
    if typ in UINT_BITS or typ in INT_BITS:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected an integer, got {value!r}"
        lo, hi = (0, 2 ** UINT_BITS[typ] - 1) if typ in UINT_BITS else (-(2 ** (INT_BITS[typ] - 1)), 2 ** (INT_BITS[typ] - 1) - 1)
        return None if lo <= value <= hi else f"{value} is out of range for {typ}"
    if typ in ("f32", "f64"):
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else f"expected a number, got {value!r}"
    if typ in enums:
        return None if value in enums[typ] else f"expected one of {', '.join(enums[typ])}, got {value!r}"
    return None  # a type this script does not model: names are still checked


# --------------------------------------------------------------------------------------------
# manifests
# --------------------------------------------------------------------------------------------

def load_docs(path):
    import yaml  # PyYAML; only needed for the value checks

    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]


def pod_specs(doc):
    spec = doc.get("spec") or {}
    kind = doc.get("kind")
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        yield (spec.get("template") or {}).get("spec") or {}
    elif kind == "CronJob":
        yield (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    elif kind == "Pod":
        yield spec


def check_values(path, valid, enums, problems):
    docs = load_docs(path)
    config_maps = {d["metadata"]["name"]: d.get("data") or {} for d in docs
                   if d.get("kind") == "ConfigMap" and d.get("metadata", {}).get("name")}
    where = lambda d: f'{path}: {d.get("kind")} {d.get("metadata", {}).get("name")}'

    def check(origin, name, raw):
        if name in valid and raw is not None:
            p = type_problem(figment_value(str(raw)), valid[name], enums)
            if p:
                problems.append(f"{origin}: {name}={raw!r}: {p}")

    for d in docs:
        if d.get("kind") == "ConfigMap":
            for name, raw in (d.get("data") or {}).items():
                check(where(d), name, raw)
        for spec in pod_specs(d):
            for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
                origin = f'{where(d)} container {c.get("name")}'
                env = {}
                for src in c.get("envFrom") or []:
                    ref = (src.get("configMapRef") or {}).get("name")
                    prefix = src.get("prefix") or ""
                    for name, raw in config_maps.get(ref, {}).items():
                        env[prefix + name] = raw
                    if src.get("secretRef"):
                        env["<secretRef>"] = None
                for e in c.get("env") or []:
                    env[e["name"]] = e.get("value") if "valueFrom" not in e else None
                    if "value" in e:
                        check(origin, e["name"], e.get("value"))
                command = " ".join(map(str, (c.get("command") or []) + (c.get("args") or [])))
                m = re.match(r"/usr/local/bin/(ingest-api|booking-processor|notifier)\b(.*)", command)
                if not m:
                    continue
                service, rest = m.group(1), m.group(2).split()
                serving = not rest or rest[0] == "serve"
                needed = REQUIRED[service] if serving else ["CITAFLOW__DATABASE__URL"]
                for name in needed:
                    if name not in env and "<secretRef>" not in env:
                        problems.append(f"{origin}: `{' '.join([service] + rest)}` starts without {name}")
                if not serving:
                    continue
                http = [p.get("containerPort") for p in c.get("ports") or [] if p.get("name") == "http"]
                port = env.get("CITAFLOW__HTTP__PORT")
                if not http:
                    problems.append(f"{origin}: no container port named http for the service's HTTP server")
                elif port is None or str(figment_value(str(port))) != str(http[0]):
                    problems.append(f"{origin}: CITAFLOW__HTTP__PORT={port!r} is not the http container port {http[0]}")
                host = env.get("CITAFLOW__HTTP__HOST")
                if host is None or figment_value(str(host)) not in ("0.0.0.0", "::"):
                    problems.append(f"{origin}: CITAFLOW__HTTP__HOST={host!r}: the service must bind 0.0.0.0 (or ::) to be reachable")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--settings", default=os.path.join(ROOT, "platform", "src", "settings.rs"))
    ap.add_argument("--list", action="store_true", help="print the valid names and their types")
    ap.add_argument("manifests", nargs="*")
    args = ap.parse_args()

    valid, enums = valid_settings(args.settings)
    if args.list:
        for name in sorted(valid):
            print(f"{name}  {valid[name]}")
        return 0
    if not args.manifests:
        ap.error("no manifests given")

    problems, seen = [], set()
    try:
        import yaml  # noqa: F401
        have_yaml = True
    except ImportError:
        have_yaml = False
        print("check_env_contract: PyYAML missing, checking names only", file=sys.stderr)
    for path in args.manifests:
        text = open(path, encoding="utf-8").read()
        for lineno, line in enumerate(text.splitlines(), 1):
            for name in NAME_RE.findall(line):
                seen.add(name)
                if name not in valid:
                    close = [v for v in valid if v.split("__")[1:2] == name.split("__")[1:2]]
                    hint = f" (fields of that section: {', '.join(sorted(c.split('__')[-1] for c in close))})" if close else ""
                    problems.append(f"{path}:{lineno}: {name} is not a field of Settings in {os.path.relpath(args.settings)}{hint}")
        if have_yaml:
            check_values(path, valid, enums, problems)

    for p in problems:
        print(p)
    if problems:
        print(f"check_env_contract: {len(problems)} problem(s)")
        return 1
    print(f"check_env_contract: {len(seen)} CITAFLOW__ names in {len(args.manifests)} manifest(s) match "
          f"Settings ({len(valid)} valid names), values have the right shape")
    return 0


if __name__ == "__main__":
    sys.exit(main())
