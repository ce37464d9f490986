"""The book itself: it builds without a warning, and its stored notebooks are clean."""

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from book_checks import (
    cell_source,
    citation_problems,
    dumps_notebook,
    html_pages,
    install_problems,
    markers_to_tags,
    nbval_leaks,
    nbval_marker,
    repository,
    repository_url_problems,
    small_text_settings,
    sync_install_cells,
    wide_figures,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
LOCAL_PATH = re.compile(
    r"(?<![\w.:/])/(?:home|root|Users|tmp|mnt|work|opt|srv|var)/[\w.-]+/"
)
#: GitHub repositories other than the book's own that its files may name (a
#: paper's official code, say); the book's own URL is _config.yml's alone.
OTHER_GITHUB_REPOSITORIES: frozenset = frozenset()
#: Where the book's files are: everything but builds, caches, results and git.
SKIPPED_DIRS = {
    ".git",
    "_build",
    "results",
    "__pycache__",
    ".benchmarks",
    ".ruff_cache",
    ".pytest_cache",
    ".ipynb_checkpoints",
    ".whl",
    ".gl",
    "ganlib.egg-info",
}
TEXT_SUFFIXES = {
    ".md",
    ".ipynb",
    ".yml",
    ".yaml",
    ".toml",
    ".txt",
    ".cfg",
    ".bib",
    ".py",
    ".rst",
    "",
}


def test_every_chapter_is_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    listed = set(re.findall(r"^\s*- file: (\S+)", toc, flags=re.M))
    assert {f"chapters/{nb.stem}" for nb in NOTEBOOKS} <= listed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_notebook_is_a_clean_full_run(path):
    notebook = json.loads(path.read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    assert path.stat().st_size < 4_000_000, "keep stored outputs lean"
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    first = "".join(code[0]["source"])
    assert "google.colab" in first and {"nbval-skip", "remove-cell"} <= set(
        code[0]["metadata"]["tags"]
    )
    for cell in code[1:]:
        assert cell["execution_count"] is not None, (
            "every cell but the Colab one has run"
        )
        # a cell may fail only on purpose: tagged raises-exception, which both
        # the book and nbval read
        expects_error = "raises-exception" in cell["metadata"].get("tags", [])
        for output in cell["outputs"]:
            assert output["output_type"] != "error" or expects_error
            text = json.dumps(output)
            assert "Traceback" not in text
            assert not LOCAL_PATH.search(text.replace("\\n", "\n")), LOCAL_PATH.search(
                text
            )
            assert "Run mode: quick" not in text, "stored outputs come from a full run"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_nbval_markers_are_cell_tags(path):
    """nbval reads a cell tag exactly as the comment it replaces (nbval/plugin.py:
    ``nbval-skip`` for ``# NBVAL_SKIP`` ...), and a tag stays out of the page;
    ``python tests/book_checks.py tags NOTEBOOK`` moves comments into tags."""
    notebook = json.loads(path.read_text())
    for index, cell in enumerate(notebook["cells"]):
        source = cell_source(cell)
        assert "NBVAL" not in source, (
            f"cell {index}: nbval marker in the source, not a tag"
        )
        assert not any(nbval_marker(line) for line in source.splitlines())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_figures_fit_the_column(path):
    """No stored figure is wider than the column, so that no page shrinks it, and
    every figure is drawn under the book's style, with no smaller font set in
    the chapter: its text is as large as the body's (book_checks)."""
    notebook = json.loads(path.read_text())
    assert not wide_figures(notebook)
    assert not small_text_settings(notebook)


def test_repository_url_is_config_yml_s_everywhere():
    """_config.yml's repository.url is the one the Colab and repository buttons
    use; every chapter's install cell and every other file must name that one."""
    url, branch = repository()
    for path in NOTEBOOKS:
        problems = install_problems(json.loads(path.read_text()), url, branch)
        assert not problems, (
            f"{path.name}: {problems}; want {url}@{branch} (python tests/book_checks.py sync-url)"
        )
    for path in _book_files():
        problems = repository_url_problems(
            path.read_text(errors="replace"), url, OTHER_GITHUB_REPOSITORIES
        )
        assert not problems, f"{path.relative_to(ROOT)} names {problems}, not {url}"


def _book_files():
    for path in sorted(ROOT.rglob("*")):
        parts = path.relative_to(ROOT).parts
        if (
            path.is_file()
            and path.suffix in TEXT_SUFFIXES
            and not SKIPPED_DIRS & set(parts)
        ):
            yield path


def test_the_checks_catch_what_they_look_for():
    """Each check of the built book fails on a planted fault (and passes without)."""
    # nbval markers shown to readers
    assert nbval_leaks('<span class="c1"># NBVAL_IGNORE_OUTPUT</span>')
    assert not nbval_leaks('<div class="cell tag_nbval-ignore-output">')

    # figures too wide for the column
    def figure(width):
        header = b"\x89PNG\r\n\x1a\n" + bytes(4) + b"IHDR"
        png = header + width.to_bytes(4, "big") + (300).to_bytes(4, "big")
        data = {"image/png": base64.b64encode(png).decode()}
        return {"cells": [{"outputs": [{"data": data}]}]}

    assert wide_figures(figure(1050)) == ["cell 0: 1050 px"]
    assert not wide_figures(figure(760))
    # figures drawn without the book's style, or with a small font
    unstyled = figure(760)
    unstyled["cells"][0] |= {"cell_type": "code", "source": "plt.plot()"}
    assert small_text_settings(unstyled) == ["cell 0: a figure before use_book_style()"]
    styled = json.loads(json.dumps(unstyled))
    styled["cells"][0]["source"] = "plots.use_book_style()"
    assert not small_text_settings(styled)
    styled["cells"][0]["source"] = "plots.use_book_style()\nax.legend(fontsize=8)"
    assert small_text_settings(styled) == ["cell 0: fontsize=8"]
    # citations
    bib = (
        '<div class="citation" id="id1" role="doc-biblioentry"><span class="label">'
        '<span class="fn-bracket">[</span>Zenati <em>et al.</em>, 2018a<span class="fn-bracket">]</span>'
        "</span><p>...</p></div>"
    )

    def cite(key, shown):
        return f'<p>[<a class="reference internal" href="../bibliography.html#{key}" title="t">{shown}</a>]</p>'

    assert not citation_problems(
        {"ok": cite("id1", "Zenati et al., 2018a") + cite("id1", "2018a")}, bib
    )
    assert citation_problems({"no entry": cite("id9", "Zenati et al., 2018a")}, bib)
    assert citation_problems({"wrong label": cite("id1", "Zenati et al., 2018")}, bib)
    assert citation_problems({"??": "<p>as shown in [??]</p>"}, bib)
    # (an unknown key, as sphinxcontrib-bibtex renders it)
    assert citation_problems(
        {"unknown key": '<p>GANs <span class="bibtex-citation" id="id2">[]</span></p>'},
        bib,
    )
    assert not citation_problems(
        {"ok": f'<span class="bibtex-citation">{cite("id1", "2018a")}</span>'}, bib
    )
    assert citation_problems({"raw role": "<p>GANs {cite}`goodfellow2014gan`</p>"}, bib)
    assert citation_problems({}, bib.replace("Zenati <em>et al.</em>, 2018a", "ZFL+18"))
    assert citation_problems({}, bib + bib.replace('id="id1"', 'id="id2"'))
    # one repository URL
    # (split, so that the scan of the repository's files does not find them)
    url, other = (
        "https://github" + ".com/example/book",
        "https://github" + ".com/someone/a-fork",
    )
    assert not repository_url_problems(f'<a href="{url}/issues/new?x=1">', url)
    assert not repository_url_problems(f'"git+{url}.git@main\\n"', url)
    assert repository_url_problems(f'<a href="{other}">', url) == [other]
    colab = (
        "https://colab.research.google.com/github" + "/someone/a-fork/blob/main/x.ipynb"
    )
    assert repository_url_problems(f'<a href="{colab}">', url) == [other]
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "outputs": [],
                "source": [f'%pip install -q "ganlib @ git+{other}@main"'],
            }
        ]
    }
    assert install_problems(notebook, url, "main") == [f"installs {other}@main"]
    assert sync_install_cells(notebook, url, "main") == 1 and not install_problems(
        notebook, url, "main"
    )
    assert install_problems({"cells": []}, url, "main")


def test_markers_become_tags_and_nothing_else_changes():
    outputs = [{"name": "stdout", "output_type": "stream", "text": ["1\n"]}]
    notebook = {
        "cells": [
            {
                "cell_type": "markdown",
                "metadata": {},
                "source": ["# NBVAL_SKIP is prose here"],
            },
            {
                "cell_type": "code",
                "execution_count": 1,
                "metadata": {"execution": {}, "tags": ["remove-cell"]},
                "outputs": outputs,
                "source": ["# NBVAL_SKIP\n", "# a comment that stays\n", "x = 1"],
            },
            {
                "cell_type": "code",
                "execution_count": 2,
                "metadata": {"execution": {}},
                "outputs": outputs,
                "source": ["print(1)\n", "#  NBVAL_IGNORE_OUTPUT"],
            },
            {
                "cell_type": "code",
                "execution_count": 3,
                "metadata": {},
                "outputs": [],
                "source": ["y = 2\n"],
            },
        ]
    }
    before = json.loads(json.dumps(notebook))
    assert markers_to_tags(notebook) == [1, 2]
    cells = notebook["cells"]
    assert cells[0] == before["cells"][0] and cells[3] == before["cells"][3]
    assert cells[1]["source"] == ["# a comment that stays\n", "x = 1"]
    assert cells[1]["metadata"]["tags"] == ["remove-cell", "nbval-skip"]
    assert cells[2]["source"] == ["print(1)"]
    assert list(cells[2]["metadata"]) == ["execution", "tags"]
    assert cells[2]["metadata"]["tags"] == ["nbval-ignore-output"]
    assert all(
        c.get("outputs") == b.get("outputs") for c, b in zip(cells, before["cells"])
    )
    assert dumps_notebook(notebook).endswith("}\n")


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    """The book built once, as CI and the README build it: -W turns every Sphinx
    warning (an unknown citation key among them) into a failure."""
    out = tmp_path_factory.mktemp("book")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from jupyter_book.cli.main import main; main()",
            "build",
            str(ROOT),
            "--path-output",
            str(out),
            "-W",
            "-n",
            "--keep-going",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    return result, out / "_build" / "html"


@pytest.fixture(scope="module")
def pages(built_book):
    result, html = built_book
    if result.returncode != 0 or not (html / "bibliography.html").exists():
        pytest.skip("the book did not build: see test_book_builds_without_warnings")
    return html_pages(html)


def test_book_builds_without_warnings(built_book):
    result, html = built_book
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    chapter = (html / "chapters" / "01_setting.html").read_text()
    assert (
        "colab.research.google.com/github/" in chapter
        and "/blob/main/chapters/01_setting.ipynb" in chapter
    )
    assert "Sabokrou" in (html / "bibliography.html").read_text()


def test_built_pages_show_no_nbval_marker(pages):
    leaks = {
        name: found for name, html in pages.items() if (found := nbval_leaks(html))
    }
    assert not leaks


def test_built_citations_resolve_to_author_year_labels(pages):
    assert not citation_problems(pages, pages["bibliography.html"])
    labels = re.findall(
        r'<span class="fn-bracket">\[</span>([^<]*)<', pages["bibliography.html"]
    )
    assert {
        "Zenati et al., 2018a",
        "Zenati et al., 2018b",
        "Akcay et al., 2019a",
        "Akcay et al., 2019b",
    } <= set(labels)
    assert re.search(
        r'href="bibliography.html#[^"]*"[^>]*>Zenati et al., 2018a</a>',
        pages["intro.html"],
    )


def test_built_pages_link_only_the_configured_repository(pages):
    url, branch = repository()
    problems = {
        name: found
        for name, html in pages.items()
        if (found := repository_url_problems(html, url, OTHER_GITHUB_REPOSITORIES))
    }
    assert not problems, f"want {url} everywhere"
    chapters = {
        name: html for name, html in pages.items() if name.startswith("chapters/")
    }
    for name, html in chapters.items():
        colab = f"colab.research.google.com/github/{url.removeprefix('https://github.com/')}/blob/{branch}/{name[:-5]}.ipynb"
        assert colab in html, f"{name}: no Colab button for {colab}"
        assert f'href="{url}"' in html, f"{name}: no repository button for {url}"
