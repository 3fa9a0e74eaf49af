"""One package per daemon. Each builds plain tables from the model, then renders them.

A backend is `emit(spec, layout) -> {relative path: text}`; BACKENDS lists them all.
"""

from __future__ import annotations

import functools
from importlib import resources

import jinja2


@functools.cache
def templates(package: str) -> jinja2.Environment:
    """Logic-free templates: StrictUndefined, no autoescape (these are config files)."""
    loader = jinja2.FunctionLoader(
        lambda name: resources.files(package).joinpath("templates", name).read_text("utf-8"))
    return jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                              autoescape=False)


def render(package: str, name: str, **values) -> str:
    return templates(package).get_template(name).render(**values)


def lookup_table(rows) -> str:
    """A postmap(1) source: `key value` lines. Rendered in Python: maps can be huge."""
    return "".join(f"{key} {value}\n" for key, value in rows)
