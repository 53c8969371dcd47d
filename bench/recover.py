#!/usr/bin/env python3
"""bench/run.sh with ONLY=: the sections not re-run keep what docs/BENCHMARKS.md has.

For each @@name@@ of bench/BENCHMARKS.md.in with no bench/out/<name>.md, the lines
of docs/BENCHMARKS.md between the template's lines around @@name@@ become that
output, and the date docs/BENCHMARKS.md gives it ("- name: ..." in the machine
section; "date not recorded" when it gives none) its .when. A section that is new in the template (not in the document yet)
is left missing: run.sh then says to run it.
"""
import os
import re
import sys

template_path, doc_path, out = sys.argv[1:4]
with open(template_path) as f:
    text = f.read()
# As run.sh's awk: HTML comments out, blank runs squeezed.
text = re.sub(r"^<!--.*?-->[^\n]*\n", "", text, flags=re.S | re.M)
template = re.sub(r"\n{3,}", "\n\n", text).split("\n")
with open(doc_path) as f:
    doc = f.read().split("\n")

when = {}
for line in doc:
    m = re.match(r"^- ([a-z_]+): (\d{4}-\d\d-\d\d \d\d:\d\d UTC)", line)
    if m:
        when[m.group(1)] = m.group(2)


def near(lines, i, step):
    """The nearest non-empty line from i, going by step, and its index."""
    while 0 <= i < len(lines) and lines[i].strip() == "":
        i += step
    return (lines[i], i) if 0 <= i < len(lines) else (None, i)


cursor = 0
for i, line in enumerate(template):
    m = re.match(r"^@@([a-z_]+)@@$", line)
    if not m:
        continue
    name = m.group(1)
    before, _ = near(template, i - 1, -1)
    after, _ = near(template, i + 1, 1)
    try:
        start = doc.index(before, cursor) + 1
        end = doc.index(after, start) if after is not None else len(doc)
    except ValueError:
        print(f"recover: {name} is not in {doc_path}", file=sys.stderr)
        continue
    cursor = end
    path = os.path.join(out, name + ".md")
    if name == "machine" or os.path.exists(path):
        continue
    with open(path, "w") as f:
        f.write("\n".join(doc[start:end]).strip("\n") + "\n")
    with open(os.path.join(out, name + ".when"), "w") as f:
        f.write(when.get(name, "date not recorded") + "\n")
    print(f"recover: {name} ({when.get(name, 'no date')}) from {doc_path}", file=sys.stderr)
