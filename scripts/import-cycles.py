#!/usr/bin/env python3
"""Prints the import graph of a Rust crate's modules and any cycle in it.

    scripts/import-cycles.py hypervisor/ebbhv/src [file|top]

An edge A -> B means a file of module A names a path into module B (`crate::b`
or `super::b`, in a `use` or inline); `file` (the default) draws one node per
file, `top` one per top-level module. Exits 1 if the graph has a cycle. It reads
paths, not rustc's name resolution: a glob import or a macro that builds paths
is not seen.
"""
import os, re, sys

root = sys.argv[1]
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p = os.path.join(d, f)
            rel = os.path.relpath(p, root)[:-3]
            parts = rel.split('/')
            if parts[-1] in ('mod', 'main', 'lib'):
                parts = parts[:-1]
            files['::'.join(parts)] = open(p).read()

def top(m):
    return m.split('::')[0] if m else ''

edges = {}
for mod, text in files.items():
    code = re.sub(r'//[^\n]*', '', text)
    targets = set()
    for m in re.finditer(r'\bcrate::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)', code):
        path = m.group(1).split('::')
        # longest prefix that is a module
        for i in range(len(path), 0, -1):
            if '::'.join(path[:i]) in files:
                targets.add('::'.join(path[:i])); break
    parent = '::'.join(mod.split('::')[:-1])
    for m in re.finditer(r'\bsuper::([a-z_][a-z0-9_]*)', code):
        cand = (parent + '::' + m.group(1)).strip(':') if parent else m.group(1)
        targets.add(cand if cand in files else parent)
    targets.discard(mod)
    edges[mod] = targets

def cycles(graph):
    out, state, stack = [], {}, []
    def dfs(n):
        state[n] = 1; stack.append(n)
        for t in sorted(graph.get(n, ())):
            if state.get(t) == 1:
                out.append(stack[stack.index(t):] + [t])
            elif t not in state:
                dfs(t)
        stack.pop(); state[n] = 2
    for n in sorted(graph):
        if n not in state:
            dfs(n)
    return out

level = sys.argv[2] if len(sys.argv) > 2 else 'file'
if level == 'top':
    g = {}
    for a, ts in edges.items():
        for t in ts:
            if top(a) != top(t) and top(a) and top(t):
                g.setdefault(top(a), set()).add(top(t))
    edges = g
for a in sorted(edges):
    print(f"{a or '(root)'} -> {', '.join(sorted(edges[a])) or '-'}")
cs = cycles(edges)
print(f"{len(cs)} cycle(s)")
for c in cs:
    print('  ' + ' -> '.join(c))
sys.exit(1 if cs else 0)
