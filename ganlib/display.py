"""Show ganlib's own source in the book, so that chapters never drift from the library.

``show_source(obj)`` returns a Markdown code block inside a foldable HTML
``<details>`` element, its summary naming what is shown.  Jupyter, Colab and
the HTML book (MyST-NB renders ``text/markdown`` outputs) all display it as
highlighted Python that the reader can fold; a block longer than
:data:`FOLD_OVER` lines starts folded.  Its plain-text form is the source
itself, so ``pytest --nbval`` compares it strictly.

An object can also be named by a string, ``"ganlib.alad.keras_model:train_step"``
(module, a colon, then the qualified name).  The source is then read from the
file without importing the module, so a chapter can show the Keras twin's code
on a machine that has only PyTorch installed, and the other way round.
"""

from __future__ import annotations

import ast
import html
import importlib.util
import inspect
from pathlib import Path

#: Blocks longer than this many lines start folded; shorter ones start open.
FOLD_OVER = 40


class SourceBlock:
    """Source code shown as a foldable, highlighted block in notebooks and the book.

    ``folded=None`` folds a block longer than :data:`FOLD_OVER` lines and opens
    a shorter one; ``True`` or ``False`` decides it.
    """

    def __init__(self, source: str, title: str, folded: bool | None = None):
        self.source, self.title = source, title
        self.lines = len(source.splitlines())
        self.folded = self.lines > FOLD_OVER if folded is None else bool(folded)

    def _repr_markdown_(self) -> str:
        # An HTML block, a blank line, then Markdown: CommonMark (Jupyter, Colab)
        # and MyST (the HTML book) both render the fenced code inside <details>.
        state = "" if self.folded else " open"
        summary = f"<code>{html.escape(self.title)}</code> ({self.lines} lines)"
        return (
            f"<details{state}>\n<summary>{summary}</summary>\n\n"
            f"```python\n{self.source}\n```\n\n</details>"
        )

    def __repr__(self) -> str:
        return f"# {self.title}\n{self.source}"


def source_of_name(reference: str) -> tuple[str, str]:
    """Source and title of ``"package.module:Qual.name"`` (or ``"package.module"``),
    read without importing.

    >>> source, title = source_of_name("ganlib.metrics:auroc")
    >>> title, source.startswith("def auroc(")
    ('ganlib.metrics.auroc', True)
    """
    module_name, _, qualname = reference.partition(":")
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise ValueError(
            f"no Python source file for module {module_name!r} (in {reference!r})"
        )
    text = Path(spec.origin).read_text(encoding="utf-8")
    if not qualname:
        return text.rstrip(), module_name
    lines, body = text.splitlines(), ast.parse(text).body
    node = None
    for part in qualname.split("."):
        node = next(
            (
                n
                for n in body
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                and n.name == part
            ),
            None,
        )
        if node is None:
            raise ValueError(f"{module_name} has no function or class {qualname!r}")
        body = node.body
    start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
    block = lines[start : node.end_lineno]
    indent = len(block[0]) - len(block[0].lstrip())
    return "\n".join(
        line[indent:] for line in block
    ).rstrip(), f"{module_name}.{qualname}"


def show_source(*objects, folded: bool | None = None) -> SourceBlock:
    """Source of ganlib functions, classes or modules, as one foldable block.

    Each object is a function, class or module, or a string
    ``"module:qualname"`` read without importing (see :func:`source_of_name`).
    Prefer the functions and classes a passage discusses to a whole module.
    ``folded`` as in :class:`SourceBlock`: by default a block longer than
    :data:`FOLD_OVER` lines starts folded.

    >>> from ganlib import metrics
    >>> block = show_source(metrics.auroc)
    >>> block.title
    'ganlib.metrics.auroc'
    """
    if not objects:
        raise TypeError("show_source needs at least one function, class or module")
    parts, titles = [], []
    for obj in objects:
        if isinstance(obj, str):
            source, name = source_of_name(obj)
        else:
            module = inspect.getmodule(obj)
            name = (
                obj.__name__
                if inspect.ismodule(obj)
                else f"{module.__name__}.{obj.__qualname__}"
            )
            source = inspect.getsource(obj).rstrip()
        parts.append(source)
        titles.append(name)
    return SourceBlock("\n\n\n".join(parts), ", ".join(titles), folded)
