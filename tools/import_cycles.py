"""Import cycles among the modules of keras_shufflenet (module-level and function-level imports alike).

    python3 tools/import_cycles.py [CHECKOUT]     # default: the current folder

Prints each cycle and 'import cycles: N' last; exits 1 if any. The package's imports point down
only (the command line on top, models and the weights registry at the bottom); a cycle means a
module reaches up. tests/test_package.py runs it."""
import ast, pathlib, sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".") / "keras_shufflenet"
if not (root / "__init__.py").is_file():
    sys.exit(f"Expected a checkout that holds keras_shufflenet/__init__.py. Received: {root.parent}")
mods = {}
for f in root.rglob("*.py"):
    parts = f.relative_to(root.parent).with_suffix("").parts
    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    mods[name] = f


def resolve(name, node, current, is_pkg):
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            pkg = current.split(".") if is_pkg else current.split(".")[:-1]
            pkg = pkg[: len(pkg) - (node.level - 1)]
            base = ".".join(pkg + ([base] if base else []))
        out = []
        for a in node.names:
            cand = f"{base}.{a.name}"
            out.append(cand if cand in mods else base)
        return out
    return [a.name for a in node.names]


edges = {m: set() for m in mods}
for m, f in mods.items():
    is_pkg = f.name == "__init__.py"
    for node in ast.walk(ast.parse(f.read_text())):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for t in resolve(m, node, m, is_pkg):
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                # a package importing its own submodules, or a module its package, is not a cycle worth naming
                if t and t != m and not m.startswith(t + ".") and not t.startswith(m + "."):
                    edges[m].add(t)

cycles, seen = [], set()
def dfs(node, stack, on):
    for n in sorted(edges[node]):
        if n in on:
            cyc = stack[stack.index(n):]
            key = frozenset(cyc)
            if key not in seen:
                seen.add(key); cycles.append(cyc + [n])
        elif len(stack) < 12:
            dfs(n, stack + [n], on | {n})
for m in sorted(mods):
    dfs(m, [m], {m})
for c in cycles:
    print("cycle:", " -> ".join(c))
print(f"import cycles: {len(cycles)}")
sys.exit(1 if cycles else 0)
