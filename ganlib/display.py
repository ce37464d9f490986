"""Show ganlib's own source inside the book, so the chapters can never drift from the library.

``show_source(obj)`` returns a Markdown code block.  Jupyter, Colab and the
HTML book (MyST-NB renders ``text/markdown`` outputs) all display it as
highlighted Python, and its plain-text form is the source itself, so
``pytest --nbval`` compares it strictly.
"""

from __future__ import annotations

import inspect


class SourceBlock:
    """Source code that renders as a highlighted block in notebooks and in the HTML book."""

    def __init__(self, source: str, title: str):
        self.source, self.title = source, title

    def _repr_markdown_(self) -> str:
        return f"**`{self.title}`**\n\n```python\n{self.source}\n```"

    def __repr__(self) -> str:
        return f"# {self.title}\n{self.source}"


def show_source(*objects) -> SourceBlock:
    """Source of one or more ganlib functions, classes or modules, as one displayable block.

    >>> from ganlib import metrics
    >>> block = show_source(metrics.auroc)
    >>> block.title
    'ganlib.metrics.auroc'
    """
    if not objects:
        raise TypeError("show_source needs at least one function, class or module")
    parts, titles = [], []
    for obj in objects:
        module = inspect.getmodule(obj)
        name = obj.__name__ if inspect.ismodule(obj) else f"{module.__name__}.{obj.__qualname__}"
        parts.append(inspect.getsource(obj).rstrip())
        titles.append(name)
    return SourceBlock("\n\n\n".join(parts), ", ".join(titles))
