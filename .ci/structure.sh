#!/usr/bin/env bash
# .ci/structure.sh: checks that the tree keeps the shape the project agreed
# on, so that it stays easy to read and change:
#   - lib/'s include graph (module = a .c file and the .h of the same name)
#     has no cycle;
#   - no file in lib/ over 650 lines, no source file anywhere over 700;
#   - the layout's numbers are not restated outside lib/layout.h (the usual
#     ways they were restated: HDR = 72, TAG = 8, MIN_BLOCK = 48, & 15 == 8,
#     ~(uint64_t)7 masks).
# Prints one line per finding and `STEP structure: N passed, M failed`
# (one check each); exits nonzero when any check failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python3 - <<'PY'
import os, re, subprocess, sys

files = subprocess.run(["git", "ls-files"], capture_output=True, text=True,
                       check=True).stdout.split()
passed = failed = 0

def report(ok, what, findings):
    global passed, failed
    if ok:
        passed += 1
        print(f"structure: {what}: ok")
    else:
        failed += 1
        print(f"structure: {what}: FAILED")
        for f in findings:
            print(f"  {f}")

# 1. lib/ include graph, by module
deps = {}
for f in files:
    if f.startswith("lib/") and f.endswith((".c", ".h")):
        mod = os.path.splitext(os.path.basename(f))[0]
        text = open(f, encoding="utf-8").read()
        for inc in re.findall(r'^#include "([^"]+)\.h"', text, re.M):
            if inc != mod and os.path.exists(f"lib/{inc}.h"):
                deps.setdefault(mod, set()).add(inc)
        deps.setdefault(mod, set())
cycles, state = [], {}
def visit(m, stack):
    state[m] = 1
    for d in sorted(deps.get(m, ())):
        if state.get(d) == 1:
            cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
        elif d not in state:
            visit(d, stack + [d])
    state[m] = 2
for m in sorted(deps):
    if m not in state:
        visit(m, [m])
report(not cycles, "lib/ include graph is a DAG", cycles)

# 2. file lengths
src = (".c", ".h", ".cpp", ".py", ".sh")
long = []
for f in files:
    if not f.endswith(src) or not os.path.isfile(f):
        continue
    n = sum(1 for _ in open(f, encoding="utf-8", errors="replace"))
    limit = 650 if f.startswith("lib/") else 700
    if n > limit:
        long.append(f"{f}: {n} lines (limit {limit})")
report(not long, "file lengths", long)

# 3. layout numbers restated
pats = [r"\b(HDR|HDR_BYTES|TAG|TAG_BYTES|MIN_BLOCK)\s*=\s*\d+",
        r"&\s*15\)\s*==\s*8", r"~\(uint64_t\)7\b", r"\bbase\s*\+\s*72\b"]
restated = []
for f in files:
    if not f.endswith((".c", ".h", ".cpp")) or f == "lib/layout.h":
        continue
    for i, line in enumerate(open(f, encoding="utf-8", errors="replace"), 1):
        if any(re.search(p, line) for p in pats):
            restated.append(f"{f}:{i}: {line.strip()}")
report(not restated, "layout numbers named once", restated)

print(f"STEP structure: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
