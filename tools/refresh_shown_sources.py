"""Refresh the stored output of every ``show_source(...)`` cell of the given chapters.

A chapter shows ganlib's code with :func:`ganlib.display.show_source`, and
``pytest --nbval`` compares that output strictly.  After an edit to a shown
function, run::

    python tools/refresh_shown_sources.py chapters/02_alocc.ipynb

Only cells whose last line calls ``show_source`` are re-executed, each in a
fresh namespace holding the chapter's imports (they compute nothing), so the
stored outputs of the chapter's training runs stay those of its full run.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path


def refresh(path: Path) -> int:
    notebook = json.loads(path.read_text())
    trees = []
    for cell in notebook["cells"]:
        try:
            tree = (
                ast.parse("".join(cell["source"]))
                if cell["cell_type"] == "code"
                else None
            )
        except SyntaxError:  # IPython magics (the Colab install cell)
            tree = None
        trees.append(tree)
    # every top-level import of the chapter, so that a cell may use names imported
    # earlier
    imports = [
        node
        for tree in trees
        if tree
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]
    changed = 0
    for cell, tree in zip(notebook["cells"], trees):
        if not tree or not tree.body:
            continue
        last = tree.body[-1]
        if not (
            isinstance(last, ast.Expr)
            and isinstance(last.value, ast.Call)
            and getattr(last.value.func, "id", None) == "show_source"
        ):
            continue
        namespace: dict = {}
        exec(compile(ast.Module(imports, []), str(path), "exec"), namespace)
        exec(compile(ast.Module(tree.body[:-1], []), str(path), "exec"), namespace)
        exec("from ganlib.display import show_source", namespace)
        block = eval(compile(ast.Expression(last.value), str(path), "eval"), namespace)
        data = {"text/markdown": block._repr_markdown_(), "text/plain": repr(block)}
        count = cell.get("execution_count")
        new = [
            {
                "output_type": "execute_result",
                "execution_count": count,
                "metadata": {},
                "data": {k: v.splitlines(keepends=True) for k, v in data.items()},
            }
        ]
        if _plain(cell["outputs"]) != _plain(new):
            cell["outputs"] = new
            changed += 1
    path.write_text(
        json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    )
    return changed


def _plain(outputs) -> list:
    return [{k: "".join(v) for k, v in o.get("data", {}).items()} for o in outputs]


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {refresh(Path(name))} shown source(s) refreshed")
