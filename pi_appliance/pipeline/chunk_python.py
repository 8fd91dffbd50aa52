"""Python splitter (pure): top-level functions, classes split into header and methods, import
and statement runs, via `ast`; by indentation when the snippet does not parse.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Sequence

from .config import PipelineConfig
from .scan import Lines
from .spans import Span, split_inside

_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
_ITEM = re.compile(r"(?:async\s+)?(def|class)\s+(\w+)")
_LONE_CR = re.compile(r"\r(?!\n)")


def python_spans(code: str, lines: Lines, cfg: PipelineConfig) -> list[Span] | None:
    """Spans of a Python block, or None when it is not Python enough to split."""
    try:
        tree = _parse(code)
    except (RecursionError, MemoryError):
        return None  # nested past the parser's limits: plain windows, not a guess by indent
    if tree is None:
        return _indent_spans(lines, cfg)
    spans: list[Span] = []
    prev_end = -1
    for kind, nodes in _runs(tree.body):
        first, last = nodes[0], nodes[-1]
        start, end = prev_end + 1, last.end_lineno - 1  # type: ignore[operator]
        prev_end = end
        if kind == "class":
            spans.extend(_class(first, start, end, len(spans), lines, cfg))  # type: ignore[arg-type]
        elif kind == "function":
            span = Span("function", first.name, start, end, defines=(first.name,))  # type: ignore[attr-defined]
            spans.extend(_maybe_split(span, first, lines, cfg))
        else:
            spans.append(Span(kind, None, start, end, defines=_assigned(nodes)))
    return spans


def _parse(code: str) -> ast.Module | None:
    # `ast` counts a lone CR as a line break and str.split("\n") does not: blanked, so that
    # ast's line numbers are the block's.
    code = _LONE_CR.sub(" ", code) if "\r" in code else code
    for source in (code, textwrap.dedent(code)):
        try:
            return ast.parse(source)
        except (SyntaxError, ValueError):
            continue
    return None


def _runs(body: Sequence[ast.stmt]) -> list[tuple[str, list[ast.stmt]]]:
    """Top-level statements grouped: each def/class alone, imports and the rest in runs."""
    runs: list[tuple[str, list[ast.stmt]]] = []
    for node in body:
        if isinstance(node, _FUNCS):
            runs.append(("function", [node]))
        elif isinstance(node, ast.ClassDef):
            runs.append(("class", [node]))
        else:
            kind = "imports" if isinstance(node, ast.Import | ast.ImportFrom) else "statements"
            if runs and runs[-1][0] == kind:
                runs[-1][1].append(node)
            else:
                runs.append((kind, [node]))
    return runs


def _start(node: ast.stmt) -> int:
    """0-based first line of a statement, decorators included."""
    decorators = getattr(node, "decorator_list", None) or []
    return min([node.lineno, *(d.lineno for d in decorators)]) - 1


def _class(node: ast.ClassDef, start: int, end: int, group: int, lines: Lines,
           cfg: PipelineConfig) -> list[Span]:
    methods = [n for n in node.body if isinstance(n, _FUNCS)]
    names = (node.name, *(m.name for m in methods))
    if len(methods) < 2:
        return [Span("class", node.name, start, end, defines=names)]
    first = methods[0]
    before = [n for n in node.body if n.lineno < first.lineno]
    header_end = max([node.lineno - 1, *(n.end_lineno - 1 for n in before)])  # type: ignore[operator]
    spans = [Span("class", node.name, start, header_end, role="header", group=group,
                  defines=(node.name,))]
    prev_end = header_end
    members = [n for n in node.body if n.lineno >= first.lineno]
    for member in members:
        m_start, m_end = prev_end + 1, member.end_lineno - 1  # type: ignore[operator]
        prev_end = m_end
        if isinstance(member, _FUNCS):
            span = Span("method", f"{node.name}.{member.name}", m_start, m_end, node.name,
                        group=group, defines=(member.name,))
            spans.extend(_maybe_split(span, member, lines, cfg))
        elif spans[-1].kind == "field" and spans[-1].role == "whole":
            last = spans.pop()
            spans.append(Span("field", None, last.start, m_end, node.name, group=group,
                              defines=last.defines + _assigned([member])))
        else:
            kind = "class" if isinstance(member, ast.ClassDef) else "field"
            spans.append(Span(kind, getattr(member, "name", None), m_start, m_end, node.name,
                              group=group, defines=_assigned([member])))
    return spans


def _maybe_split(span: Span, node: ast.stmt, lines: Lines, cfg: PipelineConfig) -> list[Span]:
    size = sum(len(lines.raw[i]) + 1 for i in range(span.start, span.end + 1))
    if size <= cfg.max_chunk_chars:
        return [span]
    cuts = [(n.lineno - 1, n.col_offset) for n in _statements(node)]
    return split_inside(span, cuts, lines.raw, cfg)


def _statements(node: ast.AST) -> list[ast.stmt]:
    """Statements nested in `node`, found through statement bodies only (ast.walk would
    also visit every expression node, ten times as many)."""
    out: list[ast.stmt] = []
    stack = [node]
    while stack:
        current = stack.pop()
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            for child in getattr(current, name, None) or ():
                if isinstance(child, ast.stmt):
                    out.append(child)
                stack.append(child)
    return out


def _assigned(nodes: Sequence[ast.stmt]) -> tuple[str, ...]:
    """Names a run of statements binds at its own level (imports, assignments, defs)."""
    out: list[str] = []
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            out.extend((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
        elif isinstance(node, ast.Assign):
            out.extend(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            out.append(node.target.id)
        elif isinstance(node, (*_FUNCS, ast.ClassDef)):
            out.append(node.name)
    return tuple(out)


def _indent_spans(lines: Lines, cfg: PipelineConfig) -> list[Span] | None:
    """For code `ast` rejects (a fragment, a typo): items start at the outermost indent."""
    raw, masked = lines.raw, lines.masked
    code_lines = [i for i, m in enumerate(masked) if m.strip()]
    if not code_lines:
        return None
    base = min(len(raw[i]) - len(raw[i].lstrip()) for i in code_lines)
    spans: list[Span] = []
    kind, name, start = "statements", None, 0
    pending_decorator = False
    for i in code_lines:
        text = raw[i]
        if len(text) - len(text.lstrip()) != base:
            continue  # (bracket depth is no guide here: the snippet may not balance them)
        m = _ITEM.match(text.strip())
        if text.strip().startswith("@"):
            if not pending_decorator:
                spans.append(Span(kind, name, start, i - 1))
                kind, name, start, pending_decorator = "function", None, i, True
            continue
        if m:
            if not pending_decorator:
                spans.append(Span(kind, name, start, i - 1))
                start = i
            kind = "function" if m.group(1) == "def" else "class"
            name = m.group(2)
        elif kind != "statements" or pending_decorator:
            spans.append(Span(kind, name, start, i - 1))
            kind, name, start = "statements", None, i
        pending_decorator = False
    spans.append(Span(kind, name, start, len(raw) - 1))
    out: list[Span] = []
    for span in spans:
        if span.end < span.start:
            continue
        span = Span(span.kind, span.name, span.start, span.end,
                    defines=(span.name,) if span.name else ())
        cuts = [(i, len(raw[i]) - len(raw[i].lstrip())) for i in range(span.start, span.end + 1)
                if masked[i].strip() and not lines.paren[i]]
        out.extend(split_inside(span, cuts, raw, cfg)
                   if sum(len(raw[i]) + 1 for i in range(span.start, span.end + 1))
                   > cfg.max_chunk_chars else [span])
    return out
