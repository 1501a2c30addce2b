#!/usr/bin/env python3
"""The values table of charts/kubefold/README.md, generated from values.yaml.

Every value documented in values.yaml with a `# -- text` comment (continued
on following `#` lines) becomes a row: key path, type, default, description.
The table sits between <!-- values:begin --> and <!-- values:end --> in the
README.

usage: chart-values-doc.py [--check] CHART_DIR
  --check   exit 1, naming the file and the command to run, when the README's
            table is not what values.yaml generates (tests/chart/chart_test.sh)
"""
import json
import re
import sys

import yaml

BEGIN, END = "<!-- values:begin -->", "<!-- values:end -->"


def rows(values_text, values):
    out = []
    stack = []  # (indent, key)
    comment = None
    for line in values_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            comment = [stripped[4:].strip()]
            continue
        if stripped.startswith("#"):
            if comment is not None:
                comment.append(stripped[1:].strip())
            continue
        m = re.match(r"^(\s*)([A-Za-z][A-Za-z0-9]*):", line)
        if not m:
            if stripped == "":
                comment = None
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m.group(2)))
        if comment is not None:
            path = [k for _, k in stack]
            value = values
            for k in path:
                value = value[k]
            out.append((".".join(path), value, " ".join(comment)))
            comment = None
    return out


def type_of(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    return "object"


def table(chart):
    with open(f"{chart}/values.yaml") as f:
        text = f.read()
    values = yaml.safe_load(text)
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for key, value, desc in rows(text, values):
        default = json.dumps(value, separators=(", ", ": "))
        cell = desc.replace("|", "\\|")
        lines.append(f"| `{key}` | {type_of(value)} | `{default}` | {cell} |")
    return "\n".join(lines)


def main():
    args = sys.argv[1:]
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    if len(args) != 1:
        sys.exit(__doc__)
    chart = args[0]
    readme_path = f"{chart}/README.md"
    with open(readme_path) as f:
        readme = f.read()
    if BEGIN not in readme or END not in readme:
        sys.exit(f"{readme_path}: no {BEGIN} ... {END} section")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    wanted = f"{head}{BEGIN}\n{table(chart)}\n{END}{tail}"
    if check:
        if wanted != readme:
            sys.exit(f"{readme_path}: the values table is stale; run: python3 scripts/chart-values-doc.py {chart}")
        print(f"{readme_path}: the values table matches values.yaml")
        return
    with open(readme_path, "w") as f:
        f.write(wanted)


if __name__ == "__main__":
    main()
