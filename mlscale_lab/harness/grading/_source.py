"""A notebook cell's code as Python: IPython's syntax turned into calls, parsed, names read.

The lint, the tampering scan and the test replay all read cells this one way.
"""

from __future__ import annotations

import ast

__all__ = ["dotted_name", "parse_cell", "python_source"]


def python_source(source: str) -> str:
    """A cell's source as plain Python (IPython magics and ``!`` turned into calls).

    Examples
    --------
    >>> python_source("%time x = 1").strip()
    "get_ipython().run_line_magic('time', 'x = 1')"
    """
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def parse_cell(source: str) -> ast.Module | None:
    """A cell's syntax tree, or None if it is not valid Python."""
    try:
        return ast.parse(python_source(source))
    except (SyntaxError, ValueError):
        return None


def dotted_name(node) -> str:
    """``a.b.c`` for a name or an attribute chain; the attributes alone after a call or an
    index (``f().x`` gives ``x``); ``""`` for anything else.

    Examples
    --------
    >>> dotted_name(ast.parse("sys.stderr.write", mode="eval").body)
    'sys.stderr.write'
    >>> dotted_name(ast.parse("f().x", mode="eval").body), dotted_name(ast.parse("1", mode="eval").body)
    ('x', '')
    """
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))
