"""SCIM filters and attribute paths (RFC 7644 sections 3.4.2.2 and 3.5.2).

One small recursive-descent parser serves the ``filter`` query parameter
and PATCH ``path`` values (``emails[type eq "work"].value``,
``urn:...:enterprise:2.0:User:manager``), evaluated against stored
resources by the attribute definitions in ``schema``: case-insensitive
names, ``caseExact`` comparisons, multi-valued attributes matching when
any value does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from insights.domain.core.limits import lone_surrogate
from insights.domain.idp.scim import ScimError
from insights.domain.idp.scim.schema import CORE, CORE_ATTR, ENTERPRISE, SCHEMAS, Attr

_TOKEN = re.compile(
    r'\s*(?:(?P<punct>[()\[\]])|(?P<string>"(?:[^"\\]|\\.)*")|(?P<word>[^\s()\[\]"]+))'
)
COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
MAX_FILTER_CHARS = 2000
# Parentheses, "not (" and "[" nest the parser's recursion: 2,000 characters hold
# 600 levels, past Python's stack. IdPs send a level or two.
MAX_FILTER_DEPTH = 32


@dataclass(frozen=True)
class Ref:
    """An attribute: ``ext`` is the extension URN holding it (None: core)."""

    ext: str | None
    attr: Attr
    sub: Attr | None = None


@dataclass(frozen=True)
class Compare:
    ref: Ref
    op: str
    value: Any


@dataclass(frozen=True)
class Present:
    ref: Ref


@dataclass(frozen=True)
class Logical:
    op: str  # "and" | "or"
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not:
    inner: Expr


@dataclass(frozen=True)
class ValuePath:
    """``emails[type eq "work"]``, optionally followed by a sub-attribute comparison."""

    ref: Ref
    inner: Expr
    then: Compare | Present | None = None


Expr = Compare | Present | Logical | Not | ValuePath


@dataclass(frozen=True)
class PatchPath:
    """A PATCH target. attr None: the extension object itself (``urn:...:User``)."""

    ext: str | None
    attr: Attr | None
    filter: Expr | None = None
    sub: Attr | None = None


def _tokens(text: str, kind: str) -> list[tuple[str, str]]:
    if len(text) > MAX_FILTER_CHARS:
        raise ScimError(400, f"{kind} is longer than {MAX_FILTER_CHARS} characters", _scim(kind))
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ScimError(400, f"{kind}: cannot read {text[pos : pos + 30]!r}", _scim(kind))
        key = match.lastgroup or "word"
        out.append((key, match.group(key)))
        pos = match.end()
    return out


def _scim(kind: str) -> str:
    return "invalidFilter" if kind == "filter" else "invalidPath"


def resolve(text: str, context: Attr | None, kind: str) -> Ref | PatchPath:
    """An attribute path: ``[urn:...:]attr[.sub]``; a bare extension URN gives a PatchPath."""
    lower = text.lower()
    ext: str | None = None
    holder = context or CORE_ATTR
    if context is None and lower.startswith("urn:"):
        for urn, schema in SCHEMAS.items():
            if lower == urn:
                if schema.name == CORE:
                    raise ScimError(
                        400, f"{kind}: {text!r} names a schema, not an attribute", _scim(kind)
                    )
                return PatchPath(ENTERPRISE, None)
            if lower.startswith(urn + ":"):
                holder = schema
                ext = None if schema.name == CORE else schema.name
                text = text[len(urn) + 1 :]
                break
        else:
            raise ScimError(400, f"{kind}: unknown schema in {text!r}", _scim(kind))
    name, _, sub_name = text.partition(".")
    attr = holder.child(name)
    if attr is None:
        raise ScimError(400, f"{kind}: unknown attribute {name!r}", _scim(kind))
    sub = None
    if sub_name:
        sub = attr.child(sub_name)
        if sub is None:
            raise ScimError(
                400, f"{kind}: {attr.name} has no sub-attribute {sub_name!r}", _scim(kind)
            )
    return Ref(ext, attr, sub)


class _Parser:
    def __init__(self, text: str, kind: str) -> None:
        self.kind = kind
        self.tokens = _tokens(text, kind)
        self.pos = 0
        self.depth = 0

    def error(self, message: str) -> ScimError:
        return ScimError(400, f"{self.kind}: {message}", _scim(self.kind))

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.error("ends too early")
        self.pos += 1
        return token

    def is_word(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "word" and token[1].lower() in words

    def expect(self, punct: str) -> None:
        kind, value = self.take()
        if kind != "punct" or value != punct:
            raise self.error(f"expected {punct!r}, found {value!r}")

    def nested(self, context: Attr | None, close: str) -> Expr:
        """The expression inside "(", "not (" or "[", up to its `close`: one level deeper."""
        self.depth += 1
        if self.depth > MAX_FILTER_DEPTH:
            raise self.error(f"nests parentheses or brackets deeper than {MAX_FILTER_DEPTH} levels")
        inner = self.expr(context)
        self.expect(close)
        self.depth -= 1
        return inner

    def done(self) -> None:
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]

    # filter = or_expr
    def expr(self, context: Attr | None) -> Expr:
        left = self.conjunction(context)
        while self.is_word("or"):
            self.take()
            left = Logical("or", left, self.conjunction(context))
        return left

    def conjunction(self, context: Attr | None) -> Expr:
        left = self.negation(context)
        while self.is_word("and"):
            self.take()
            left = Logical("and", left, self.negation(context))
        return left

    def negation(self, context: Attr | None) -> Expr:
        if self.is_word("not"):
            self.take()
            self.expect("(")
            return Not(self.nested(context, ")"))
        return self.atom(context)

    def atom(self, context: Attr | None) -> Expr:
        kind, value = self.take()
        if kind == "punct" and value == "(":
            return self.nested(context, ")")
        if kind != "word":
            raise self.error(f"expected an attribute, found {value!r}")
        ref = self.ref(value, context)
        token = self.peek()
        if token == ("punct", "["):
            if context is not None or ref.sub is not None or not ref.attr.multi:
                raise self.error(f"{value!r} cannot take a [filter]")
            self.take()
            inner = self.nested(ref.attr, "]")
            then = None
            if self.peek() and self.peek()[0] == "word" and self.peek()[1].startswith("."):  # type: ignore[index]
                sub = ref.attr.child(self.take()[1][1:])
                if sub is None:
                    raise self.error(f"{ref.attr.name} has no such sub-attribute")
                then = self.comparison(Ref(None, sub))
            return ValuePath(ref, inner, then)
        return self.comparison(ref)

    def comparison(self, ref: Ref) -> Compare | Present:
        kind, op = self.take()
        op = op.lower()
        if kind != "word" or (op not in COMPARE_OPS and op != "pr"):
            raise self.error(
                f"expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr), found {op!r}"
            )
        if op == "pr":
            return Present(ref)
        kind, raw = self.take()
        return Compare(ref, op, self.literal(kind, raw))

    def literal(self, kind: str, raw: str) -> Any:
        if kind == "string":
            try:
                text = json.loads(raw)
            except ValueError:  # an escape JSON does not have: "\x", "\u12"
                raise self.error(f"{raw[:40]!r} is not a valid JSON string") from None
            if lone_surrogate(text):
                raise self.error(f"{raw[:40]!r} holds a lone UTF-16 surrogate (not valid Unicode)")
            return text
        lower = raw.lower()
        if lower in ("true", "false"):
            return lower == "true"
        if lower == "null":
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise self.error(f"{raw!r} is not a value (quote strings)") from None

    def ref(self, text: str, context: Attr | None) -> Ref:
        found = resolve(text, context, self.kind)
        if isinstance(found, PatchPath):
            raise self.error(f"{text!r} names a schema, not an attribute")
        return found


def parse_filter(text: str) -> Expr:
    parser = _Parser(text, "filter")
    if not parser.tokens:
        raise parser.error("is empty")
    found = parser.expr(None)
    parser.done()
    return found


def parse_path(text: str) -> PatchPath:
    """A PATCH path: ``attr``, ``attr.sub``, ``attr[filter]``, ``attr[filter].sub``, URN forms."""
    parser = _Parser(text, "path")
    kind, first = parser.take() if parser.tokens else ("", "")
    if kind != "word":
        raise parser.error("must start with an attribute name")
    found = resolve(first, None, "path")
    if isinstance(found, PatchPath):
        parser.done()
        return found
    if parser.peek() != ("punct", "["):
        parser.done()
        return PatchPath(found.ext, found.attr, None, found.sub)
    if found.sub is not None or not found.attr.multi:
        raise parser.error(f"{first!r} cannot take a [filter]")
    parser.take()
    inner = parser.nested(found.attr, "]")
    sub = None
    if parser.peek() is not None:
        kind, rest = parser.take()
        sub = found.attr.child(rest[1:]) if kind == "word" and rest.startswith(".") else None
        if sub is None:
            raise parser.error(f"{found.attr.name} has no sub-attribute {rest[1:]!r}")
    parser.done()
    return PatchPath(found.ext, found.attr, inner, sub)


# ------------------------------------------------------------- evaluation
def raw_values(obj: dict[str, Any], ref: Ref) -> list[Any]:
    container = obj.get(ref.ext, {}) if ref.ext else obj
    value = container.get(ref.attr.name) if isinstance(container, dict) else None
    items = value if isinstance(value, list) else ([] if value is None else [value])
    sub = ref.sub
    if sub is None and ref.attr.type == "complex" and ref.attr.child("value"):
        sub = ref.attr.child("value")  # a complex attribute compares by its value
    if sub is not None:
        items = [i.get(sub.name) for i in items if isinstance(i, dict)]
    return [i for i in items if i is not None]


def _leaf(ref: Ref) -> Attr:
    return ref.sub or ref.attr.child("value") or ref.attr


def _compare(op: str, have: Any, want: Any, case_exact: bool) -> bool:
    if isinstance(have, bool) or isinstance(want, bool) or want is None:
        if op == "eq":
            return have == want
        if op == "ne":
            return have != want
        return False
    if isinstance(have, str) and isinstance(want, str):
        if not case_exact:
            have, want = have.lower(), want.lower()
        return {
            "eq": have == want,
            "ne": have != want,
            "co": want in have,
            "sw": have.startswith(want),
            "ew": have.endswith(want),
            "gt": have > want,
            "ge": have >= want,
            "lt": have < want,
            "le": have <= want,
        }[op]
    return False


def matches(expr: Expr, obj: dict[str, Any]) -> bool:
    if isinstance(expr, Logical):
        if expr.op == "and":
            return matches(expr.left, obj) and matches(expr.right, obj)
        return matches(expr.left, obj) or matches(expr.right, obj)
    if isinstance(expr, Not):
        return not matches(expr.inner, obj)
    if isinstance(expr, Present):
        return any(v not in ("", [], {}) for v in raw_values(obj, expr.ref))
    if isinstance(expr, ValuePath):
        container = obj.get(expr.ref.ext, {}) if expr.ref.ext else obj
        elements = container.get(expr.ref.attr.name) or []
        for element in elements if isinstance(elements, list) else []:
            if (
                isinstance(element, dict)
                and matches(expr.inner, element)
                and (expr.then is None or matches(expr.then, element))
            ):
                return True
        return False
    values = raw_values(obj, expr.ref)
    case_exact = _leaf(expr.ref).case_exact
    if expr.op == "ne":
        return not any(_compare("eq", v, expr.value, case_exact) for v in values)
    return any(_compare(expr.op, v, expr.value, case_exact) for v in values)


def equality_lookup(expr: Expr) -> tuple[str, str] | None:
    """(index name, value) when a filter is one ``eq`` on an indexed attribute."""
    if isinstance(expr, Compare) and expr.op == "eq" and isinstance(expr.value, str):
        ref = expr.ref
        if ref.ext is None and ref.attr.name in ("userName", "externalId") and ref.sub is None:
            return ref.attr.name, expr.value
        if (
            ref.ext is None
            and ref.attr.name == "emails"
            and ref.sub in (None, ref.attr.child("value"))
        ):
            return "emails", expr.value
    if isinstance(expr, ValuePath) and expr.ref.attr.name == "emails":
        then = expr.then
        if isinstance(then, Compare) and then.op == "eq" and then.ref.attr.name == "value":
            return ("emails", then.value) if isinstance(then.value, str) else None
        inner = expr.inner
        if (
            then is None
            and isinstance(inner, Compare)
            and inner.op == "eq"
            and inner.ref.attr.name == "value"
        ):
            return ("emails", inner.value) if isinstance(inner.value, str) else None
    return None
