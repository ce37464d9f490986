"""Show ganlib's own source inside the book, so the chapters can never drift from the library.

``show_source(obj)`` returns a Markdown code block.  Jupyter, Colab and the
HTML book (MyST-NB renders ``text/markdown`` outputs) all display it as
highlighted Python, and its plain-text form is the source itself, so
``pytest --nbval`` compares it strictly.

An object can also be named by a string, ``"ganlib.alad.keras_model:train_step"``
(module, a colon, then the qualified name).  The source is then read from the
file without importing the module, so a chapter can show the Keras twin's code
on a machine that has only PyTorch installed, and the other way round.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
from pathlib import Path


class SourceBlock:
    """Source code that renders as a highlighted block in notebooks and in the HTML book."""

    def __init__(self, source: str, title: str):
        self.source, self.title = source, title

    def _repr_markdown_(self) -> str:
        return f"**`{self.title}`**\n\n```python\n{self.source}\n```"

    def __repr__(self) -> str:
        return f"# {self.title}\n{self.source}"


def source_of_name(reference: str) -> tuple[str, str]:
    """Source and title of ``"package.module:Qual.name"`` (or ``"package.module"``), read without importing.

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


def show_source(*objects) -> SourceBlock:
    """Source of one or more ganlib functions, classes or modules, as one displayable block.

    Each object is a function, class or module, or a string
    ``"module:qualname"`` read without importing (see :func:`source_of_name`).

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
    return SourceBlock("\n\n\n".join(parts), ", ".join(titles))
