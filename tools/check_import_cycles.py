"""Lists import cycles between the project's packages (exit status 1 if any).

    python tools/check_import_cycles.py [--modules]

Reads every ``.py`` file of the packages with `ast` (nothing is imported or
run), maps each import to the role package that holds the imported module
(`ROLES`; a
checkout's ``data/``, ``eval/``, ``tools/`` are ``interp_fr.data``,
``interp_fr.eval``, ``interp_fr.tools``), and reports the cycles of the
package graph: package A imports from B and B, directly or through others, from
A. Imports inside functions count too: they still tie the packages together.
Imports under ``if __name__ == "__main__":`` do not: they run only when the
file is executed as a script, as a module ``__main__`` of its own, so they can
never close a cycle (an evaluation library's ``python -m`` entry importing its
command line is the case). ``--modules`` checks module-level cycles instead.
"""
import argparse
import ast
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Checkout folder -> dotted package prefix.
ROOTS = {"interp_fr": "interp_fr", "data": "interp_fr.data", "eval": "interp_fr.eval",
         "tools": "interp_fr.tools", "attr_recovery": "attr_recovery"}


def modules(repo=REPO):
    """dotted module name -> file path, for every module of the packages."""
    out = {}
    for folder, prefix in ROOTS.items():
        base = os.path.join(repo, folder)
        for root, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith((".", "__"))]
            rel = os.path.relpath(root, base)
            pkg = prefix if rel == "." else prefix + "." + rel.replace(os.sep, ".")
            for name in files:
                if name.endswith(".py"):
                    mod = pkg if name == "__init__.py" else pkg + "." + name[:-3]
                    out[mod] = os.path.join(root, name)
    return out


def _is_main_guard(node):
    """Whether ``node`` is ``if __name__ == "__main__":``."""
    test = getattr(node, "test", None)
    return (isinstance(node, ast.If) and isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


def imports(path, module, known):
    """The project modules imported by the file at ``path``."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found = set()
    script_only = set()
    for node in tree.body:
        if _is_main_guard(node):
            script_only.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in script_only:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            for alias, prefix in (("data.", "interp_fr.data."), ("eval.", "interp_fr.eval."),
                                  ("tools.", "interp_fr.tools.")):
                if name.startswith(alias):
                    name = prefix + name[len(alias):]
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


# The project's role packages, one per folder role (README, "Package
# layout"). A module belongs to the longest role that prefixes it, so
# ``interp_fr.export`` is part of the core library and ``interp_fr.tools.freeze``
# of the tools. The bare ``interp_fr`` package module belongs to ``common``:
# its ``__init__`` holds only the checkout finder and the command set-up, which
# import nothing but ``interp_fr.common`` (every ``import interp_fr.x`` runs it).
ROLES = ("interp_fr.common", "interp_fr.data", "interp_fr.eval", "interp_fr.tools",
         "interp_fr.pipeline", "attr_recovery", "interp_fr") + tuple(
    f"attr_recovery.{role}" for role in ("nets", "conversion", "readers", "export",
                                          "trainers", "analysis", "shipped", "stages",
                                          "cli"))


def package_of(module, known=None):
    """The role package a module belongs to (see `ROLES`)."""
    if module == "interp_fr":
        return "interp_fr.common"
    for role in sorted(ROLES, key=len, reverse=True):
        if module == role or module.startswith(role + "."):
            return role
    return module.rpartition(".")[0]


def cycles(graph):
    """The strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", action="store_true")
    args = parser.parse_args()
    known = modules()
    graph, why = {}, {}
    for mod, path in known.items():
        src = mod if args.modules else package_of(mod, known)
        for target in imports(path, mod, known):
            dst = target if args.modules else package_of(target, known)
            if dst != src:
                graph.setdefault(src, set()).add(dst)
                why.setdefault((src, dst), []).append(f"{mod} -> {target}")
    found = cycles(graph)
    for comp in found:
        print("cycle among: " + ", ".join(comp))
        for a in comp:
            for b in comp:
                for line in why.get((a, b), [])[:3]:
                    print(f"    {line}")
    print(f"{len(found)} cycle(s) among {len(graph)} "
          f"{'modules' if args.modules else 'packages'}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
