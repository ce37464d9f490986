"""Checks on the book's sources and on its built HTML, used by tests/test_book.py.

Each check returns a list of problems (empty when all is well), so that a test
can show that it catches a planted fault.  Run as a script, the module also
edits chapters' cell sources and tags (never their outputs):

    python tests/book_checks.py tags chapters/07_benchmark.ipynb
        moves nbval's comment markers (``# NBVAL_SKIP`` ...) into cell tags
    python tests/book_checks.py sync-url
        writes _config.yml's repository URL and branch into every chapter's
        install cell
"""

from __future__ import annotations

import base64
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- notebooks


def dumps_notebook(notebook: dict) -> str:
    """A notebook as the chapters store it (nbformat's layout: indent 1, UTF-8)."""
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def cell_source(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


#: nbval's comment markers and the cell tags it reads the same way
#: (nbval/plugin.py: ``metadata_tags = {k.lower().replace('_', '-'): ...}``).
NBVAL_TAGS = {
    marker: marker.lower().replace("_", "-")
    for marker in (
        "NBVAL_IGNORE_OUTPUT",
        "NBVAL_CHECK_OUTPUT",
        "NBVAL_RAISES_EXCEPTION",
        "NBVAL_SKIP",
    )
}


def nbval_marker(line: str) -> str | None:
    """The marker a source line holds, parsed as nbval parses it, or None."""
    line = line.strip()
    if not line.startswith("#"):
        return None
    comment = line.lstrip("#").strip()
    return comment if comment in NBVAL_TAGS else None


def add_tags(cell: dict, tags) -> None:
    """Append tags to a cell, creating ``metadata.tags`` where the keys sort it."""
    metadata = cell["metadata"]
    if "tags" in metadata:
        metadata["tags"].extend(t for t in tags if t not in metadata["tags"])
        return
    items = list(metadata.items())
    at = next((i for i, (key, _) in enumerate(items) if key > "tags"), len(items))
    items.insert(at, ("tags", list(dict.fromkeys(tags))))
    cell["metadata"] = dict(items)


def markers_to_tags(notebook: dict) -> list[int]:
    """Remove nbval's marker lines from the code cells and tag the cells instead.

    Returns the indices of the cells changed; outputs are left as they are.
    """
    changed = []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        lines = cell_source(cell).splitlines(keepends=True)
        markers = [nbval_marker(line) for line in lines]
        if not any(markers):
            continue
        kept = [line for line, marker in zip(lines, markers) if not marker]
        if kept and markers[-1]:  # the marker was the last line
            kept[-1] = kept[-1].rstrip("\n")
        cell["source"] = kept if isinstance(cell["source"], list) else "".join(kept)
        add_tags(cell, [NBVAL_TAGS[m] for m in markers if m])
        changed.append(index)
    return changed


# ----------------------------------------------------------- repository URL


def repository(root: Path = ROOT) -> tuple[str, str]:
    """``repository.url`` and ``repository.branch`` of the book's _config.yml."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text())["repository"]
    return normalise(config["url"]), config.get("branch", "main")


def normalise(url: str) -> str:
    url = url.strip().rstrip("/.")
    return url[: -len(".git")] if url.endswith(".git") else url


#: A GitHub repository named in a URL, a Colab link or a pip spec.
GITHUB_REPOSITORY = re.compile(
    r"(?:github\.com|colab\.research\.google\.com/github)/([\w-]+)/([\w.-]+?)(?:\.git)?(?=[/@#?\"'\s)<>\]`\\]|$)"
)
#: pip's ``name @ git+URL@branch``, in a chapter's install cell.
INSTALL_SPEC = re.compile(r"git\+(https?://[^\s\"'@]+)@([\w./-]+)")


def github_repositories(text: str) -> set[str]:
    """Every GitHub repository a text names, as an https URL of github.com."""
    found = GITHUB_REPOSITORY.findall(text)
    return {normalise(f"https://github.com/{owner}/{name}") for owner, name in found}


def repository_url_problems(text: str, url: str, others=frozenset()) -> list[str]:
    """The GitHub repositories a text names other than ``url`` and ``others``."""
    allowed = {normalise(url), *map(normalise, others)}
    return sorted(github_repositories(text) - allowed)


def install_specs(notebook: dict) -> list[tuple[str, str]]:
    """``(url, branch)`` of every ``git+`` install in a notebook's code cells."""
    return [
        (normalise(url), branch)
        for cell in notebook["cells"]
        if cell["cell_type"] == "code"
        for url, branch in INSTALL_SPEC.findall(cell_source(cell))
    ]


def install_problems(notebook: dict, url: str, branch: str) -> list[str]:
    specs = install_specs(notebook)
    if not specs:
        return ["no install cell (pip install git+URL@branch)"]
    wanted = (normalise(url), branch)
    return [f"installs {u}@{b}" for u, b in specs if (u, b) != wanted]


def sync_install_cells(notebook: dict, url: str, branch: str) -> int:
    """Point every ``git+`` install at ``url@branch``; returns the cells changed."""
    changed = 0
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code" or not INSTALL_SPEC.search(cell_source(cell)):
            continue
        source = INSTALL_SPEC.sub(f"git+{url}@{branch}", cell_source(cell))
        lines = source.splitlines(keepends=True)
        cell["source"] = lines if isinstance(cell["source"], list) else source
        changed += 1
    return changed


#: The widest figure a chapter may store, in pixels: the book's text column on
#: a wide screen (772 px, measured by tools/browser_check.py).  A wider figure
#: is shrunk to the column, and with it its text; at this width the book's
#: style (ganlib.plots.BOOK_STYLE, 12 pt = 16.7 px) keeps every text of a
#: figure at the body's 16 px.
MAX_FIGURE_PIXELS = 772

#: A font size set in a chapter's code overrides the book's style.
_FONT_SIZE = re.compile(r"\bfontsize\s*=\s*([0-9.]+)")


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG image, read from its header."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG image")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def wide_figures(notebook: dict, limit: int = MAX_FIGURE_PIXELS) -> list[str]:
    """``cell N: W px`` for every stored PNG figure wider than ``limit``."""
    found = []
    for index, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            encoded = output.get("data", {}).get("image/png")
            if encoded:
                data = base64.b64decode("".join(encoded))
                width = png_size(data)[0]
                if width > limit:
                    found.append(f"cell {index}: {width} px")
    return found


def small_text_settings(notebook: dict) -> list[str]:
    """Where a chapter that draws figures could draw text below the body's size:
    no call of ``plots.use_book_style()``, or a ``fontsize=`` under 12 pt."""
    found = []
    styled = False
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = cell_source(cell)
        styled = styled or "use_book_style()" in source
        for output in cell.get("outputs", []):
            if "image/png" in output.get("data", {}) and not styled:
                found.append(f"cell {index}: a figure before use_book_style()")
        for match in _FONT_SIZE.finditer(source):
            if float(match.group(1)) < 12:
                found.append(f"cell {index}: {match.group(0)}")
    return found


# -------------------------------------------------------------- built HTML


def nbval_leaks(html: str) -> list[str]:
    """Snippets of a page around every "NBVAL" in it (a marker shown to readers)."""
    found = re.finditer("NBVAL", html)
    return [html[max(0, m.start() - 40) : m.end() + 40] for m in found]


class _Page(HTMLParser):
    """What the citation check needs from a page: its citation links, the
    bibliography entries it holds, and the text a reader sees."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[list[str]] = []  # [target id, text]
        self.citations: list[int] = []  # links in each in-text citation
        self.entries: dict[str, str] = {}  # citation id -> label
        self.text: list[str] = []
        self._stack: list[tuple[str, str]] = []  # (tag, role)
        self._entry: str | None = None
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        role = ""
        if tag == "a" and "bibliography.html#" in (attrs.get("href") or ""):
            self.links.append([attrs["href"].split("#", 1)[1], ""])
            if any(r == "citation" for _, r in self._stack):
                self.citations[-1] += 1
            role = "link"
        elif "bibtex-citation" in classes:
            self.citations.append(0)
            role = "citation"
        elif "citation" in classes and attrs.get("id"):
            self._entry = attrs["id"]
        elif tag == "span" and "label" in classes and self._entry:
            self.entries[self._entry] = ""
            role = "label"
        elif tag in ("script", "style"):
            self._skip += 1
            role = "skip"
        if tag not in ("br", "img", "meta", "link", "input", "hr", "source"):
            self._stack.append((tag, role))

    def handle_endtag(self, tag):
        if tag not in (open_tag for open_tag, _ in self._stack):
            return
        while self._stack:
            open_tag, role = self._stack.pop()
            if role == "skip":
                self._skip -= 1
            elif role == "label":
                self._entry = None
            if open_tag == tag:
                break

    def handle_data(self, data):
        roles = {role for _, role in self._stack}
        if "link" in roles:
            self.links[-1][1] += data
        if "label" in roles and self._entry:
            self.entries[self._entry] += data
        if not self._skip:
            self.text.append(data)


#: A bibliography label of the author-year style: "Zenati et al., 2018a".
LABEL = re.compile(r"^\[(?P<authors>.+), (?P<year>\d{4}[a-z]?)\]$")


def bibliography_labels(html: str) -> dict[str, str]:
    """Citation id -> label (without its brackets) of a bibliography page."""
    page = _Page()
    page.feed(html)
    return {key: label.strip() for key, label in page.entries.items()}


def citation_problems(pages: dict[str, str], bibliography: str) -> list[str]:
    """Unresolved or mislabelled citations in built pages ``{name: html}``.

    Every bibliography label is author-year ("[Zenati et al., 2018a]") and
    unique; every citation link points at an entry of the bibliography and
    shows its label (or, for {cite:t}, the label's year); no in-text citation is
    empty (sphinxcontrib-bibtex prints an unknown key as "[]"), and no page
    shows "??" or an unparsed ``{cite}`` role.
    """
    problems = []
    labels = bibliography_labels(bibliography)
    if not labels:
        problems.append("bibliography: no entries")
    for key, label in labels.items():
        if not LABEL.match(label):
            problems.append(f"bibliography: {label!r} ({key}) is not author-year")
    seen: dict[str, str] = {}
    for key, label in labels.items():
        if label in seen:
            problems.append(f"bibliography: {label!r} labels {seen[label]} and {key}")
        seen[label] = key
    for name, html in pages.items():
        page = _Page()
        page.feed(html)
        text = "".join(page.text)
        if 0 in page.citations:
            problems.append(f"{name}: {page.citations.count(0)} empty citation(s)")
        for marker in ("??", "{cite"):
            if marker in text:
                at = text.index(marker)
                context = text[max(0, at - 60) : at + 60]
                problems.append(f"{name}: {marker!r} in {context!r}")
        for key, shown in page.links:
            label = labels.get(key)
            shown = " ".join(shown.split())
            if label is None:
                problems.append(f"{name}: citation {shown!r} points at no entry {key}")
                continue
            match = LABEL.match(label)
            forms = {label[1:-1]}
            if match:
                forms |= {match["year"], match["authors"]}
            if shown not in forms:
                problems.append(f"{name}: citation {shown!r} is not label {label}")
    return problems


def html_pages(html_dir: Path) -> dict[str, str]:
    """Every page of a built book, by its path under ``html_dir``."""
    return {
        path.relative_to(html_dir).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(html_dir.rglob("*.html"))
        if "_static" not in path.parts and "_sources" not in path.parts
    }


# ------------------------------------------------------------------- script


def _main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("tags", "sync-url"):
        print(__doc__)
        return 2
    command, paths = argv[0], [Path(p) for p in argv[1:]]
    if not paths:
        paths = sorted((ROOT / "chapters").glob("*.ipynb"))
    url, branch = repository()
    for path in paths:
        text = path.read_text(encoding="utf-8")
        notebook = json.loads(text)
        if dumps_notebook(notebook) != text:
            print(f"{path}: not in nbformat's layout; left alone")
            continue
        if command == "tags":
            changed = markers_to_tags(notebook)
        else:
            changed = sync_install_cells(notebook, url, branch)
        if changed:
            path.write_text(dumps_notebook(notebook), encoding="utf-8")
        print(f"{path}: {len(changed) if isinstance(changed, list) else changed} cells")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
