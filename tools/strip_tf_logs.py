"""Remove TensorFlow's start-up log lines from a chapter's stored outputs.

``jupyter execute --inplace`` keeps every stderr line, and TensorFlow prints
its CUDA, oneDNN and CPU-feature messages there on import.  They carry no
meaning for a reader (nbval ignores stderr anyway), so after a full run::

    python tools/strip_tf_logs.py chapters/05_egbad.ipynb

drops each stderr output made only of such lines; any other stderr output
(a warning the reader should see) is kept whole.
"""

from __future__ import annotations

import json
import re
import sys

LOG_LINE = re.compile(
    r"^(WARNING: All log messages before absl|[IWE]\d{4} [\d:.]+ +\d+ \S+\] "
    r"|To enable the following instructions|$)"
)


def strip(path: str) -> int:
    """Drop the log-only stderr outputs of notebook ``path``; returns how many."""
    with open(path, encoding="utf-8") as file:
        notebook = json.load(file)
    removed = 0
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                lines = "".join(output["text"]).splitlines()
                if all(LOG_LINE.match(line) for line in lines):
                    removed += 1
                    continue
            kept.append(output)
        cell["outputs"] = kept
    with open(path, "w", encoding="utf-8") as file:
        json.dump(notebook, file, indent=1, ensure_ascii=False)
        file.write("\n")
    return removed


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {strip(name)} log-only stderr output(s) removed")
