"""Author-year citations whose labels tell same-author, same-year papers apart.

sphinxcontrib-bibtex's ``author_year`` referencing style prints "Zenati et al.,
2018" for both of Zenati et al.'s 2018 papers, and its default bibliography
style keeps pybtex's alpha labels ("ZFL+18"), which match nothing in the text.
This local Sphinx extension (``sphinx.local_extensions`` in ``_config.yml``)
registers four plugins, all named ``author_year_abc``:

* a pybtex label style: "Krizhevsky, 2009", "Goodfellow et al., 2014", and
  "Zenati et al., 2018a" / "Zenati et al., 2018b" when two entries would
  otherwise share a label (one author: the surname; two: "A and B"; more:
  "A et al."; the letters follow the bibliography's order);
* a pybtex sorting style: by author, year and title, read as a reader reads
  them (pybtex's own sorts "{GANomaly}" after "Skip-GANomaly", by its brace);
* a pybtex formatting style for ``bibtex_default_style``: pybtex's ``alpha``
  with that label style and that order;
* a sphinxcontrib-bibtex referencing style for ``bibtex_reference_style``:
  ``{cite}`` and ``{cite:p}`` print the label itself, "[Zenati et al., 2018a]",
  so that the text and the bibliography agree letter for letter; ``{cite:t}``
  prints "Zenati et al. [2018a]" and ``{cite:year}`` "2018a".
"""

import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, List

import pybtex.plugin
from pybtex.richtext import Text
from pybtex.style.formatting.alpha import Style as AlphaStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting.author_year_title import (
    SortingStyle as AuthorYearTitleSortingStyle,
)
from sphinxcontrib.bibtex.plugin import register_plugin
from sphinxcontrib.bibtex.style.referencing import (
    BaseReferenceStyle,
    BracketStyle,
    GroupReferenceStyle,
    PersonStyle,
)
from sphinxcontrib.bibtex.style.referencing.extra_author import (
    ExtraAuthorReferenceStyle,
)
from sphinxcontrib.bibtex.style.referencing.extra_empty import (
    ExtraEmptyReferenceStyle,
)
from sphinxcontrib.bibtex.style.referencing.extra_label import (
    ExtraLabelReferenceStyle,
)
from sphinxcontrib.bibtex.style.template import (
    entry_label,
    join,
    join2,
    node,
    post_text,
    pre_text,
    reference,
)

NAME = "author_year_abc"
#: Between the authors and the year, in a label.
SEP = ", "


def _plain(latex: str) -> str:
    return Text.from_latex(latex).render_as("text")


def label_authors(entry) -> str:
    """'Krizhevsky', 'Donahue and Dumoulin', 'Zenati et al.'."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    surnames = [_plain(" ".join(p.prelast_names + p.last_names)) for p in persons]
    if not surnames:
        return entry.key
    if len(surnames) == 1:
        return surnames[0]
    if len(surnames) == 2 and surnames[1] != "others":
        return f"{surnames[0]} and {surnames[1]}"
    return f"{surnames[0]} et al."


class LabelStyle(BaseLabelStyle):
    """Author-year labels, with a, b, ... where two would be the same."""

    def format_labels(self, sorted_entries):
        labels = [self.format_label(entry) for entry in sorted_entries]
        count, seen = Counter(labels), Counter()
        for label in labels:
            if count[label] == 1:
                yield label
            else:
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label]]
                seen[label] += 1

    def format_label(self, entry) -> str:
        return label_authors(entry) + SEP + entry.fields.get("year", "n.d.")


class SortingStyle(AuthorYearTitleSortingStyle):
    """By author, year and title, without LaTeX's braces, accents and case."""

    def sorting_key(self, entry):
        author, year, title = super().sorting_key(entry)
        return _sort_text(author), year, _sort_text(title)


def _sort_text(latex: str) -> str:
    text = unicodedata.normalize("NFD", _plain(latex))
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


class Style(AlphaStyle):
    """pybtex's alpha style with author-year labels, in a reader's order."""

    default_label_style = NAME
    default_sorting_style = NAME


@node
def label_part(children, data, part="year"):
    """The authors or the year (with its letter) of the entry's label."""
    assert not children
    authors, _, year = data["formatted_entry"].label.rpartition(SEP)
    return Text(year if part == "year" else authors)


@dataclass
class ParentheticalReferenceStyle(BaseReferenceStyle):
    """{cite}, {cite:p}: the label, as the bibliography prints it."""

    bracket: BracketStyle = field(default_factory=BracketStyle)
    person: PersonStyle = field(default_factory=PersonStyle)

    def role_names(self) -> Iterable[str]:
        return [f"{alt}p{full}" for alt in ["", "al"] for full in ["", "s"]]

    def outer(self, role_name: str, children: List[Text]):
        return self.bracket.outer(children, brackets="al" not in role_name)

    def inner(self, role_name: str):
        if "s" in role_name:  # the full author list, then the year
            cited = join(sep=SEP)[
                self.person.author_or_editor_or_title(full=True), label_part
            ]
        else:
            cited = entry_label
        return join2(sep1=" ", sep2=", ")[pre_text, reference[cited], post_text]


@dataclass
class TextualReferenceStyle(BaseReferenceStyle):
    """{cite:t}: 'Zenati et al. [2018a]'."""

    bracket: BracketStyle = field(default_factory=BracketStyle)
    person: PersonStyle = field(default_factory=PersonStyle)

    def role_names(self) -> Iterable[str]:
        return [f"{cap}t{full}" for cap in ["", "c"] for full in ["", "s"]]

    def outer(self, role_name: str, children: List[Text]):
        return self.bracket.outer(children, brackets=False, capfirst="c" in role_name)

    def inner(self, role_name: str):
        if "s" in role_name:
            authors = self.person.author_or_editor_or_title(full=True)
        else:
            authors = label_part(part="authors")
        return join(sep=" ")[
            authors,
            join[
                self.bracket.left,
                join2(sep1=" ", sep2=", ")[pre_text, reference[label_part], post_text],
                self.bracket.right,
            ],
        ]


@dataclass
class YearReferenceStyle(BaseReferenceStyle):
    """{cite:year}: '2018a'."""

    bracket: BracketStyle = field(default_factory=BracketStyle)

    def role_names(self) -> Iterable[str]:
        return ["year", "yearpar"]

    def outer(self, role_name: str, children: List[Text]):
        return self.bracket.outer(children, brackets="par" in role_name)

    def inner(self, role_name: str):
        return reference[label_part]


@dataclass
class ReferenceStyle(GroupReferenceStyle):
    """Every citation role, in the words of the author-year labels."""

    #: Several keys in one citation: "[Donahue et al., 2017; Dumoulin et al., 2017]".
    bracket: BracketStyle = field(default_factory=lambda: BracketStyle(sep="; "))
    person: PersonStyle = field(default_factory=PersonStyle)

    def __post_init__(self):
        self.styles.extend(
            [
                ParentheticalReferenceStyle(bracket=self.bracket, person=self.person),
                TextualReferenceStyle(bracket=self.bracket, person=self.person),
                ExtraAuthorReferenceStyle(bracket=self.bracket, person=self.person),
                ExtraLabelReferenceStyle(bracket=self.bracket),
                YearReferenceStyle(bracket=self.bracket),
                ExtraEmptyReferenceStyle(),
            ]
        )
        super().__post_init__()


pybtex.plugin.register_plugin("pybtex.style.labels", NAME, LabelStyle)
pybtex.plugin.register_plugin("pybtex.style.sorting", NAME, SortingStyle)
pybtex.plugin.register_plugin("pybtex.style.formatting", NAME, Style)
register_plugin("sphinxcontrib.bibtex.style.referencing", NAME, ReferenceStyle)


def setup(app):
    return {"parallel_read_safe": True, "parallel_write_safe": True}
