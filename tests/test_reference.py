"""docs/reference.md is what `mailspec reference` prints from the schemas today, and the
defaults it shows are what the language reads back into the model's defaults."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mailspec import language, reference

ROOT = Path(__file__).parents[1]
ROWS = [(b, k) for b in language.BLOCKS.values() for k in b.keywords]


def test_the_committed_reference_is_not_stale():
    printed = subprocess.run([sys.executable, "-m", "mailspec", "reference"], capture_output=True, text=True,
                             check=True).stdout
    assert printed == reference.render()
    assert (ROOT / "docs" / "reference.md").read_text() == printed, \
        "docs/reference.md is stale: run `mailspec reference > docs/reference.md`"


def test_every_block_and_keyword_has_its_row():
    text = reference.render()
    for block, keyword in ROWS:
        section = text.split(f"## {block.name}\n", 1)[1].split("\n## ", 1)[0]
        assert f"| `{keyword.name}` |" in section, (block.name, keyword.name)


@pytest.mark.parametrize(("block", "keyword"), [(b, k) for b, k in ROWS if isinstance(k.takes, language.One)],
                         ids=lambda x: getattr(x, "name", ""))
def test_a_shown_default_reads_back_as_the_models_default(block, keyword):
    """`keyword <the default as shown>` is valid and means the default: the table does
    not print seconds where the language wants `5m`, or a quote it would not take."""
    shown = reference.shown_default(block, keyword)
    written = re.fullmatch(r'`"?(.*?)"?`', shown)
    if written is None:
        assert shown in {"none", "required"} or shown.startswith("[its block]"), shown
        return
    value = keyword.takes.parse(written.group(1), *keyword.takes.args)
    default = block.default(keyword)
    assert value == default and str(getattr(value, "value", value)) != "", (shown, value, default)


def test_an_anchor_is_the_headings_own():
    assert reference.anchor(language.BLOCKS["a domain's spam block"]) == "#a-domains-spam-block"
    assert reference.duration(300) == "5m" and reference.duration(604800) == "7d" and reference.duration(90) == "90 s"
