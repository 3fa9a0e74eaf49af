"""`mailspec explain CODE`: the long form of a diagnostic, with an example spec, read
from explanations.md beside this module (like `rustc --explain`)."""

from __future__ import annotations

import functools
import re
from importlib import resources

import attrs

_SECTION = re.compile(r"^## ([EW]\d{4}): (.+)$", re.MULTILINE)
_EXAMPLE = re.compile(r"^```mailspec(?: (\S+))?\n(.*?)^```$", re.MULTILINE | re.DOTALL)
ROOT_FILE = "spec.mailspec"


@attrs.frozen
class Explanation:
    code: str
    title: str
    text: str  # the prose
    files: tuple[tuple[str, str], ...]  # (file name, text): the example; the first is the root

    def render(self) -> str:
        parts = [f"{self.code}: {self.title}", "", self.text]
        if self.files:
            parts += ["", "For example:" if len(self.files) == 1 else "For example, with two files:"]
            for name, text in self.files:
                if len(self.files) > 1:
                    parts += ["", f"  {name}:"]
                parts += ["", *(f"    {line}" if line else "" for line in text.rstrip("\n").split("\n"))]
        return "\n".join(parts) + "\n"


@functools.cache
def explanations() -> dict[str, Explanation]:
    text = resources.files("mailspec").joinpath("explanations.md").read_text(encoding="utf-8")
    found = {}
    heads = list(_SECTION.finditer(text))
    for head, following in zip(heads, [*heads[1:], None], strict=True):
        body = text[head.end():following.start() if following else len(text)]
        files = tuple((m.group(1) or ROOT_FILE, m.group(2)) for m in _EXAMPLE.finditer(body))
        prose = _EXAMPLE.sub("", body).strip()
        found[head.group(1)] = Explanation(head.group(1), head.group(2), re.sub(r"\n{3,}", "\n\n", prose), files)
    return found
