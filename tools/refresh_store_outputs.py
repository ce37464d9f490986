"""Refresh the stored outputs of the cells that read the benchmark store.

Each paper chapter ends with an "against the yardstick" table read from
``results/benchmark/`` (chapter 1 with the baselines on every protocol).  Those
cells carry the tag ``benchmark-store``, compute nothing but tables from the
store, and import what they use, so they can be re-executed alone when the
store grows, without re-running the chapter's training::

    python tools/refresh_store_outputs.py chapters/0[1-6]*.ipynb

The tagged cells of a chapter run in one fresh kernel, in the chapter's
directory, in their order; any error stops the refresh with the cell named.
``GANLIB_BENCHMARK_STORE`` points them at another store (a snapshot), which is
what must then be committed with the notebooks, since ``pytest --nbval``
compares these outputs with what the committed store gives.
Chapter 7 reads nothing else and is simply re-executed whole.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

TAG = "benchmark-store"


def refresh(path: Path) -> int:
    notebook = json.loads(path.read_text())
    tagged = [
        cell
        for cell in notebook["cells"]
        if cell["cell_type"] == "code"
        and TAG in cell.get("metadata", {}).get("tags", [])
    ]
    if not tagged:
        return 0
    scratch = nbformat.v4.new_notebook()
    scratch.cells = [nbformat.v4.new_code_cell("".join(c["source"])) for c in tagged]
    scratch.metadata = notebook["metadata"]
    NotebookClient(
        scratch, timeout=600, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    changed = 0
    for cell, done in zip(tagged, scratch.cells):
        if cell.get("execution_count") is None:  # a new cell: the refresh's count
            cell["execution_count"] = done.execution_count
        outputs = [dict(o) for o in done.outputs]
        for output in outputs:
            if "execution_count" in output:
                output["execution_count"] = cell["execution_count"]
            for key in ("data", "text"):  # the notebook files store lists of lines
                if isinstance(output.get(key), dict):
                    output[key] = {
                        k: v.splitlines(keepends=True) if isinstance(v, str) else v
                        for k, v in output[key].items()
                    }
                elif isinstance(output.get(key), str):
                    output[key] = output[key].splitlines(keepends=True)
        outputs = json.loads(json.dumps(outputs))  # plain dicts, as the file holds
        if outputs != cell["outputs"]:
            cell["outputs"] = outputs
            changed += 1
    path.write_text(
        json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    )
    return changed


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {refresh(Path(name))} store cell(s) refreshed")
