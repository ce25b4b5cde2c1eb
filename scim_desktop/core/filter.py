"""SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (RFC 7644 §3.5.2): parse, check, evaluate.

:func:`parse` turns filter text into a small immutable AST with a tokenizer and a
recursive-descent parser for the ABNF of RFC 7644 §3.4.2.2 (Figure 1)::

    FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
    valuePath = attrPath "[" valFilter "]"
    valFilter = attrExp / logExp / *1"not" "(" valFilter ")"
    attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
    logExp    = FILTER SP ("and" / "or") SP FILTER
    compValue = false / null / true / number / string     ; JSON literals (RFC 7159)

with the precedence of Table 4 (grouping ``()`` and ``[]`` > ``not`` > ``and`` > ``or``).
Operators, ``and``/``or``/``not`` and ``true``/``false``/``null`` are case-insensitive.

:func:`check` rejects what the RFC forbids whatever the data (``gt`` on a boolean, ...);
:func:`evaluate` answers one resource. Neither needs I/O; definitions come from
:mod:`scim_desktop.core.schemas` so ``caseExact`` and ``dateTime`` are honoured.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeAlias

from scim_desktop.core.errors import InvalidFilter, InvalidPath, ScimError
from scim_desktop.core.paths import AttrPath, ci_get, parse_attr_path
from scim_desktop.core.schemas import Attribute, ResourceType

__all__ = [
    "MAX_FILTER_CLAUSES",
    "MAX_FILTER_DEPTH",
    "MAX_FILTER_LENGTH",
    "And",
    "Compare",
    "Filter",
    "Not",
    "Or",
    "PatchPath",
    "Present",
    "ValuePath",
    "check",
    "compile_filter",
    "evaluate",
    "evaluate_element",
    "evaluate_steps",
    "filter_size",
    "parse",
    "parse_path",
    "resource_bulk",
]


# --- AST ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Compare:
    """``path op value``; ``op`` is lower-case: eq ne co sw ew gt ge lt le."""

    path: AttrPath
    op: str
    value: str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Present:
    """``path pr``."""

    path: AttrPath


@dataclass(frozen=True, slots=True)
class And:
    left: Filter
    right: Filter


@dataclass(frozen=True, slots=True)
class Or:
    left: Filter
    right: Filter


@dataclass(frozen=True, slots=True)
class Not:
    expr: Filter


@dataclass(frozen=True, slots=True)
class ValuePath:
    """``path[filter]``: ``filter``'s paths are sub-attributes of ``path`` (RFC 7644 §3.4.2.2)."""

    path: AttrPath
    filter: Filter


Filter: TypeAlias = Compare | Present | And | Or | Not | ValuePath


@dataclass(frozen=True, slots=True)
class PatchPath:
    """A PATCH ``path`` (RFC 7644 §3.5.2): ``PATH = attrPath / valuePath [subAttr]``.

    ``name.familyName`` gives ``attr=AttrPath(None, "name", "familyName")``, no filter, no sub;
    ``emails[type eq "work"].value`` gives ``attr=AttrPath(None, "emails")``, the filter and
    ``sub="value"``.
    """

    attr: AttrPath
    filter: Filter | None
    sub: str | None


# RFC 7644 §3.4.2.2, Table 3.
_COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
_ORDERING_OPS = frozenset({"gt", "ge", "lt", "le"})
_SUBSTRING_OPS = frozenset({"co", "sw", "ew"})
_ALL_OPS = _COMPARE_OPS | {"pr"}
_OPS_TEXT = "eq, ne, co, sw, ew, gt, ge, lt, le or pr"
_LITERALS: dict[str, bool | None] = {"true": True, "false": False, "null": None}
# JSON number (RFC 7159 §6), leniently allowing leading zeros.
_NUMBER_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_SUB_NAME_RE = re.compile(r"\$ref|[A-Za-z][A-Za-z0-9_\-]*")

# --- limits (issue 12: one 40,000-clause filter held the server for 99.8 s) ---------------------
# Far above what any client sends: Okta sends one comparison (userName eq "..."), other IdPs one
# or two; a client looking up a batch of ids with "or" stays well within both. A filter beyond
# a limit is refused before it is tokenized (400 invalidFilter naming the limit), so parsing
# one costs at most a few milliseconds; the scan a filter starts is sliced (see
# scim_desktop.server.slices), which bounds how long it holds the IOLoop at a time.
#: Characters in a filter (or a PATCH path).
MAX_FILTER_LENGTH = 16_384
#: Clauses: each attribute test (``pr`` or a comparison) and each value filter ``attr[...]``,
#: the tests inside value filters included.
MAX_FILTER_CLAUSES = 200
#: Nesting of (), [] and not(); also bounds recursion in the parser and the evaluator.
MAX_FILTER_DEPTH = 32

# --- tokenizer ---------------------------------------------------------------------------------
_STRING = "string"
_WORD = "word"
_END = "end"
_PUNCT = frozenset("()[]")
_WORD_STOP = frozenset('()[]"')


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "(" ")" "[" "]" string word end
    text: str  # as written in the source
    pos: int  # 0-based offset in the source
    value: str | None = None  # the decoded JSON string for string tokens


def _describe(tok: _Token) -> str:
    if tok.kind == _END:
        return "the end"
    text = tok.text if len(tok.text) <= 40 else tok.text[:37] + "..."
    return f"{text!r} at position {tok.pos + 1}"


class _Parser:
    """Tokenizer and recursive-descent parser; ``error`` is the ScimError class to raise."""

    def __init__(self, text: str, error: type[ScimError], what: str) -> None:
        self.text = text
        self.error = error
        self.what = what
        self.depth = 0
        self.clauses = 0
        self.tokens = self._tokenize()
        self.i = 0

    # -- errors ---------------------------------------------------------------------------------
    def fail(self, message: str) -> NoReturn:
        shown = self.text if len(self.text) <= 200 else self.text[:197] + "..."
        raise self.error(f"Invalid {self.what} {shown!r}: {message}")

    # -- tokens ---------------------------------------------------------------------------------
    def _tokenize(self) -> list[_Token]:
        text, tokens, i, n = self.text, [], 0, len(self.text)
        while i < n:
            ch = text[i]
            if ch.isspace():
                i += 1
            elif ch in _PUNCT:
                tokens.append(_Token(ch, ch, i))
                i += 1
            elif ch == '"':
                # compValue strings are JSON strings (RFC 7644 §3.4.2.2, RFC 7159 §7): the
                # stdlib JSON scanner decodes \" \\ \/ \b \f \n \r \t and \uXXXX (with pairs).
                try:
                    value, end = json.decoder.scanstring(text, i + 1, False)  # type: ignore[attr-defined]
                except json.JSONDecodeError as exc:
                    if exc.msg.startswith("Unterminated string"):
                        self.fail(f"unterminated string starting at position {i + 1}")
                    self.fail(f"bad string at position {exc.pos + 1}: {exc.msg}")
                tokens.append(_Token(_STRING, text[i:end], i, value))
                i = end
            else:
                # A word runs to the next space, bracket, parenthesis or quote: attribute paths
                # (including URNs such as "urn:...:enterprise:2.0:User:employeeNumber"),
                # operators, keywords, literals and numbers. The parser decides which it is.
                j = i + 1
                while j < n and text[j] not in _WORD_STOP and not text[j].isspace():
                    j += 1
                tokens.append(_Token(_WORD, text[i:j], i))
                i = j
        tokens.append(_Token(_END, "", n))
        return tokens

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        tok = self.tokens[self.i]
        if tok.kind != _END:
            self.i += 1
        return tok

    @staticmethod
    def is_word(tok: _Token, *words: str) -> bool:
        return tok.kind == _WORD and tok.text.lower() in words

    def enter(self, tok: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_FILTER_DEPTH:
            self.fail(
                f"nested more than {MAX_FILTER_DEPTH} levels deep at position {tok.pos + 1}; "
                f"the limit is {MAX_FILTER_DEPTH} levels of (), [] and not()"
            )

    # -- grammar --------------------------------------------------------------------------------
    def parse_filter(self, parent: AttrPath | None) -> Filter:
        """``or`` has the lowest precedence (RFC 7644 §3.4.2.2, Table 4)."""
        terms = [self.parse_and(parent)]
        while self.is_word(self.peek(), "or"):
            self.advance()
            terms.append(self.parse_and(parent))
        return _chain(Or, terms)

    def parse_and(self, parent: AttrPath | None) -> Filter:
        """``and`` binds tighter than ``or`` (RFC 7644 §3.4.2.2, Table 4)."""
        terms = [self.parse_unary(parent)]
        while self.is_word(self.peek(), "and"):
            self.advance()
            terms.append(self.parse_unary(parent))
        return _chain(And, terms)

    def parse_unary(self, parent: AttrPath | None) -> Filter:
        tok = self.peek()
        if self.is_word(tok, "not"):
            following = self.peek(1)
            if following.kind == "(":
                # RFC 7644 §3.4.2.2: "not" "(" FILTER ")".
                self.advance()
                return Not(self.parse_group(parent))
            if not self.is_word(following, *_ALL_OPS):
                self.fail(
                    f"'not' at position {tok.pos + 1} must be followed by a filter in "
                    'parentheses, e.g. not (title pr) or not (userType eq "Intern")'
                )
            # Otherwise "not" is an attribute name ("not pr").
        if tok.kind == "(":
            return self.parse_group(parent)
        return self.parse_attr_exp(parent)

    def parse_group(self, parent: AttrPath | None) -> Filter:
        opening = self.advance()
        self.enter(opening)
        node = self.parse_filter(parent)
        closing = self.peek()
        if closing.kind != ")":
            self.fail(
                f"expected 'and', 'or' or ')' to close the '(' at position {opening.pos + 1}, "
                f"found {_describe(closing)}"
            )
        self.advance()
        self.depth -= 1
        return node

    def parse_attr_exp(self, parent: AttrPath | None) -> Filter:
        prev = self.tokens[self.i - 1] if self.i > 0 else None
        tok = self.advance()
        self.clauses += 1
        if self.clauses > MAX_FILTER_CLAUSES:
            self.fail(
                f"more than {MAX_FILTER_CLAUSES} clauses (the one at position {tok.pos + 1} "
                f"is number {self.clauses}); the limit is {MAX_FILTER_CLAUSES}"
            )
        if tok.kind != _WORD or self.is_word(tok, "and", "or"):
            where = f" after {prev.text!r}" if prev is not None else ""
            self.fail(f"expected an attribute name{where}, found {_describe(tok)}")
        path = self.attr_path(tok, parent)
        nxt = self.peek()
        if nxt.kind == "[":
            return ValuePath(path, self.parse_value_filter(path, parent))
        op_tok = self.advance()
        op = op_tok.text.lower() if op_tok.kind == _WORD else ""
        if op == "pr":
            return Present(path)
        if op not in _COMPARE_OPS:
            if op_tok.kind == _END:
                self.fail(f"expected an operator ({_OPS_TEXT}) after {tok.text!r}")
            self.fail(
                f"unknown operator {_describe(op_tok)} after {tok.text!r}; expected {_OPS_TEXT}"
            )
        return Compare(path, op, self.parse_value(op_tok))

    def parse_value_filter(self, path: AttrPath, parent: AttrPath | None) -> Filter:
        """``attrPath "[" valFilter "]"``; the filter's paths are relative to ``path``."""
        opening = self.advance()
        if parent is not None:
            # valFilter has no valuePath alternative (RFC 7644 §3.4.2.2, Figure 1).
            self.fail(f"value filters cannot be nested ('[' at position {opening.pos + 1})")
        if path.sub is not None:
            self.fail(
                f"'[' at position {opening.pos + 1} must follow a multi-valued attribute, "
                f"not the sub-attribute {str(path)!r}"
            )
        self.enter(opening)
        if self.peek().kind == "]":
            self.fail(f"empty value filter '[]' at position {opening.pos + 1}")
        node = self.parse_filter(path)
        closing = self.peek()
        if closing.kind != "]":
            self.fail(
                f"expected 'and', 'or' or ']' to close the '[' at position {opening.pos + 1}, "
                f"found {_describe(closing)}"
            )
        self.advance()
        self.depth -= 1
        return node

    def attr_path(self, tok: _Token, parent: AttrPath | None) -> AttrPath:
        """attrPath = [URI ":"] ATTRNAME *1subAttr (RFC 7644 §3.4.2.2, §3.10)."""
        try:
            path = parse_attr_path(tok.text)
        except InvalidPath:
            self.fail(f"{_describe(tok)} is not a valid attribute name or path")
        if parent is not None and (path.urn is not None or path.sub is not None):
            self.fail(
                f"inside {parent!s}[...] name a sub-attribute of {parent.attr!r} such as "
                f"'value' or 'type'; found {_describe(tok)}"
            )
        return path

    def parse_value(self, op_tok: _Token) -> str | int | float | bool | None:
        """compValue = false / null / true / number / string (RFC 7644 §3.4.2.2)."""
        tok = self.advance()
        if tok.kind == _STRING:
            assert tok.value is not None
            return tok.value
        if tok.kind == _WORD:
            lowered = tok.text.lower()
            if lowered in _LITERALS:
                return _LITERALS[lowered]
            if _NUMBER_RE.fullmatch(tok.text):
                return self.number(tok)
        if tok.kind == _END:
            self.fail(f"missing value after {op_tok.text!r} at position {op_tok.pos + 1}")
        self.fail(
            f'expected a value after {op_tok.text!r} (a "quoted string", a number, true, '
            f"false or null), found {_describe(tok)}"
        )

    def number(self, tok: _Token) -> int | float:
        text = tok.text
        try:
            if any(c in text for c in ".eE"):
                value = float(text)
                if value in (float("inf"), float("-inf")):
                    raise ValueError(text)
                return value
            return int(text)
        except ValueError:
            self.fail(f"number {_describe(tok)} is out of range")


def _chain(kind: type[And] | type[Or], terms: list[Filter]) -> Filter:
    """Join ``a op b op c ...`` as a balanced tree (and/or are associative), so long chains
    never make deep recursion in evaluation, equality or repr. Order is preserved, so
    evaluation still short-circuits left to right; up to three terms it is left-associative.
    """
    if len(terms) == 1:
        return terms[0]
    mid = (len(terms) + 1) // 2
    return kind(_chain(kind, terms[:mid]), _chain(kind, terms[mid:]))


#: Recently parsed filters. A request's filter is parsed twice (the Okta classifier and the
#: listing), and Okta's import repeats the same ones; the trees are immutable, so sharing is
#: safe. Bounded: cleared when full.
_PARSED: dict[str, Filter] = {}
_PARSED_MAX = 256


def _check_length(text: str, error: type[ScimError], what: str) -> None:
    """Refuse text over MAX_FILTER_LENGTH before any work that grows with it."""
    if len(text) > MAX_FILTER_LENGTH:
        raise error(
            f"The {what} is {len(text)} characters long; the limit is {MAX_FILTER_LENGTH} "
            f"characters (and {MAX_FILTER_CLAUSES} clauses)"
        )


def parse(text: str) -> Filter:
    """Parse a filter (RFC 7644 §3.4.2.2); raise :class:`InvalidFilter` naming the problem."""
    if not isinstance(text, str):
        raise InvalidFilter("The filter must be a string")
    _check_length(text, InvalidFilter, "filter")
    node = _PARSED.get(text)
    if node is None:
        node = _parse_simple_eq(text) or _parse(text)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[text] = node
    return node


#: ``attr eq "text"`` with a plain attribute name and a string without escapes: Okta's
#: existence check on every create. Parsed by one regular expression into exactly what the
#: full parser builds (tested against it); anything else goes to the parser.
_SIMPLE_EQ_RE = re.compile(r'[ ]*([A-Za-z][A-Za-z0-9_-]*)[ ]+(?i:eq)[ ]+"([^"\\\x00-\x1f]*)"[ ]*')
_NOT_NAMES = frozenset(
    {"and", "or", "not", "pr", "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"}
)


def _parse_simple_eq(text: str) -> Filter | None:
    m = _SIMPLE_EQ_RE.fullmatch(text)
    if m is None or m.group(1).lower() in _NOT_NAMES:
        return None
    return Compare(AttrPath(None, m.group(1)), "eq", m.group(2))


def _parse(text: str) -> Filter:
    if not text.strip():
        raise InvalidFilter("The filter is empty")
    parser = _Parser(text, InvalidFilter, "filter")
    node = parser.parse_filter(None)
    tok = parser.peek()
    if tok.kind != _END:
        if tok.kind in (")", "]"):
            parser.fail(f"unbalanced {tok.text!r} at position {tok.pos + 1}")
        parser.fail(f"expected 'and', 'or' or the end of the filter, found {_describe(tok)}")
    return node


#: ``attr[sub eq "text"]``: Okta's member remove, one operation per member (a 1 MB PATCH
#: holds 11,000). Parsed by one regular expression into exactly what the full parser builds
#: (tested against it); anything else goes to the parser.
_SIMPLE_VALUE_PATH_RE = re.compile(
    r'([A-Za-z][A-Za-z0-9_-]*)\[([A-Za-z][A-Za-z0-9_-]*)[ ]+(?i:eq)[ ]+"([^"\\\x00-\x1f]*)"\]'
)


def _parse_simple_value_path(text: str) -> PatchPath | None:
    m = _SIMPLE_VALUE_PATH_RE.fullmatch(text)
    if m is None or m.group(1).lower() in _NOT_NAMES or m.group(2).lower() in _NOT_NAMES:
        return None
    compare = Compare(AttrPath(None, m.group(2)), "eq", m.group(3))
    return PatchPath(AttrPath(None, m.group(1)), compare, None)


def parse_path(text: str) -> PatchPath:
    """Parse a PATCH ``path`` (RFC 7644 §3.5.2); raise :class:`InvalidPath` when malformed."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidPath("The PATCH path is empty")
    _check_length(text, InvalidPath, "PATCH path")
    return _parse_simple_value_path(text) or _parse_path(text)


def _parse_path(text: str) -> PatchPath:
    parser = _Parser(text, InvalidPath, "path")
    tok = parser.advance()
    if tok.kind != _WORD:
        parser.fail(f"expected an attribute name, found {_describe(tok)}")
    attr = parser.attr_path(tok, None)
    node: Filter | None = None
    sub: str | None = None
    if parser.peek().kind == "[":
        node = parser.parse_value_filter(attr, None)
        nxt = parser.peek()
        # valuePath [subAttr], subAttr = "." ATTRNAME (RFC 7644 §3.5.2, §3.10).
        if nxt.kind == _WORD and nxt.text.startswith("."):
            parser.advance()
            if not _SUB_NAME_RE.fullmatch(nxt.text[1:]):
                parser.fail(f"{_describe(nxt)} is not a valid sub-attribute")
            sub = nxt.text[1:]
    tok = parser.peek()
    if tok.kind != _END:
        parser.fail(f"unexpected {_describe(tok)}")
    return PatchPath(attr, node, sub)


# --- resolving paths against definitions -------------------------------------------------------
_Scope: TypeAlias = ResourceType | Attribute | None


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a path reads from and how its values compare."""

    container: str | None  # extension schema URN to step into first, or None
    attr: str
    sub: str | None
    definition: Attribute | None  # what the path names (None: unknown attribute)
    kind: str  # type of the compared scalars ("" unknown); complex -> its "value" sub-attribute
    case_exact: bool


_TARGETS: dict[tuple[int, AttrPath], tuple[_Scope, _Target]] = {}
_TARGETS_MAX = 4096


def _target(path: AttrPath, scope: _Scope) -> _Target:
    """``_build_target`` cached by (scope, path): evaluation runs over every stored record."""
    key = (id(scope), path)
    hit = _TARGETS.get(key)
    if hit is not None and hit[0] is scope:
        return hit[1]
    target = _build_target(path, scope)
    if len(_TARGETS) >= _TARGETS_MAX:
        _TARGETS.clear()
    _TARGETS[key] = (scope, target)
    return target


def _build_target(path: AttrPath, scope: _Scope) -> _Target:
    container: str | None = None
    attr_def: Attribute | None = None
    if isinstance(scope, ResourceType):
        schema = scope.schema_for(path.urn)
        if path.urn is not None and schema is not scope.schema:
            # Extension attributes live in a complex attribute named by the schema URN
            # (RFC 7643 §3.3); an unknown URN is read the same way and simply matches nothing.
            container = path.urn
        if schema is not None:
            attr_def = schema.attribute(path.attr)
        if attr_def is None and path.urn is None:
            # Leniency: an unqualified name that only an extension defines ("employeeNumber").
            for ext, _required in scope.extensions:
                found = ext.attribute(path.attr)
                if found is not None:
                    attr_def, container = found, ext.id
                    break
    elif isinstance(scope, Attribute):
        # Inside a valuePath the names are sub-attributes of the filtered attribute.
        attr_def = scope.sub(path.attr)
    definition = attr_def
    if path.sub is not None:
        definition = attr_def.sub(path.sub) if attr_def is not None else None
    scalar = definition
    if definition is not None and definition.type == "complex":
        # A complex attribute compared as a whole compares its "value" (RFC 7644 §3.4.2.2:
        # "emails co ..."), so "members eq <id>" works.
        scalar = definition.sub("value")
    kind = scalar.type if scalar is not None else ""
    case_exact = scalar.case_exact if scalar is not None else False
    return _Target(container, path.attr, path.sub, definition, kind, case_exact)


def _collect(obj: dict[str, Any], t: _Target) -> list[Any]:
    """Every value the path names in ``obj``; multi-valued attributes are flattened."""
    base: Any = obj
    if t.container is not None:
        base = ci_get(obj, t.container)
    value = ci_get(base, t.attr)
    if value is None:
        return []
    if t.sub is None:
        return value if isinstance(value, list) else [value]
    out: list[Any] = []
    for element in value if isinstance(value, list) else (value,):
        sub = ci_get(element, t.sub)
        if sub is None:
            continue
        if isinstance(sub, list):
            out.extend(sub)
        else:
            out.append(sub)
    return out


def _present(value: Any) -> bool:
    """RFC 7644 §3.4.2.2 "pr": a non-empty value, or a non-empty node of a complex attribute.
    null, "", [] and {} are unassigned (RFC 7643 §2.5)."""
    if value is None or value == "":
        return False
    if isinstance(value, list):
        return any(_present(v) for v in value)
    if isinstance(value, dict):
        return any(_present(v) for v in value.values())
    return True


# --- dateTime (RFC 7643 §2.3.5: xsd:dateTime, in practice RFC 3339) ----------------------------
_LONG_FRACTION_RE = re.compile(r"(\.[0-9]{6})[0-9]+")


def _instant(text: str) -> datetime | None:
    """``text`` as an aware datetime (no offset means UTC), or None when it is not a date."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        # RFC 3339 allows "t"/"z" in lower case and any number of fraction digits.
        fixed = _LONG_FRACTION_RE.sub(r"\1", text.upper())
        try:
            moment = datetime.fromisoformat(fixed)
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _not_a_date(path: str, value: object) -> InvalidFilter:
    return InvalidFilter(
        f"{path!r} is a dateTime attribute; compare it with a date and time such as "
        f'"2011-05-13T04:42:34Z", not {json.dumps(value)}'
    )


# --- evaluation --------------------------------------------------------------------------------
# A filter is compiled once into closures with its definitions resolved, its value lower-cased
# (caseExact false) or parsed (dateTime); the closures then run over every stored record.
_Matcher: TypeAlias = Callable[[dict[str, Any]], bool]
_ValueTest: TypeAlias = Callable[[Any], bool]

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


def _never(_value: Any) -> bool:
    return False


def _value_test(
    op: str, wanted: str | int | float | bool, t: _Target, path: AttrPath
) -> _ValueTest:
    """A test of one scalar attribute value against the filter value."""
    if t.kind == "dateTime" and isinstance(wanted, str) and op not in _SUBSTRING_OPS:
        # RFC 7644 §3.4.2.2: dateTime values compare chronologically, as instants.
        there = _instant(wanted)
        if there is None:
            raise _not_a_date(str(path), wanted)
        order = _ORDER[op]

        def date_test(value: Any) -> bool:
            if isinstance(value, str):
                here = _instant(value)
                return here is not None and order(here, there)
            if isinstance(value, datetime):
                return order(value if value.tzinfo else value.replace(tzinfo=UTC), there)
            return False

        return date_test
    if isinstance(wanted, str):
        # caseExact false (RFC 7643 §2.2: userName, emails.value, displayName, unknown
        # attributes) folds both sides; id, externalId and meta.* are caseExact.
        fold = not t.case_exact
        w = wanted.lower() if fold else wanted
        if op == "co":

            def pred(v: str) -> bool:
                return w in v

        elif op == "sw":

            def pred(v: str) -> bool:
                return v.startswith(w)

        elif op == "ew":

            def pred(v: str) -> bool:
                return v.endswith(w)

        else:
            order = _ORDER[op]  # gt/ge/lt/le on strings: lexicographic (RFC 7644 §3.4.2.2)

            def pred(v: str) -> bool:
                return order(v, w)

        if fold:
            return lambda v: isinstance(v, str) and pred(v.lower())
        return lambda v: isinstance(v, str) and pred(v)
    if isinstance(wanted, bool):
        # Booleans equal only booleans (True must not equal 1); they have no order.
        return (lambda v: v is wanted) if op == "eq" else _never
    if op in _SUBSTRING_OPS:
        return _never
    order = _ORDER[op]
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and order(v, wanted)


def _compile(node: Filter, scope: _Scope) -> _Matcher:
    if isinstance(node, Compare):
        return _compile_compare(node, _target(node.path, scope))
    if isinstance(node, And):
        left_and, right_and = _compile(node.left, scope), _compile(node.right, scope)
        return lambda obj: left_and(obj) and right_and(obj)
    if isinstance(node, Or):
        left_or, right_or = _compile(node.left, scope), _compile(node.right, scope)
        return lambda obj: left_or(obj) or right_or(obj)
    if isinstance(node, Not):
        inner = _compile(node.expr, scope)
        return lambda obj: not inner(obj)
    if isinstance(node, Present):
        t = _target(node.path, scope)
        return lambda obj: any(_present(v) for v in _collect(obj, t))
    if isinstance(node, ValuePath):
        # The whole inner filter must hold for one and the same element (RFC 7644 §3.4.2.2),
        # and its names are resolved as sub-attributes of the filtered attribute.
        t = _target(node.path, scope)
        element = _compile(node.filter, t.definition)
        return lambda obj: any(isinstance(e, dict) and element(e) for e in _collect(obj, t))
    raise TypeError(f"not a filter node: {node!r}")


def _compile_compare(node: Compare, t: _Target) -> _Matcher:
    op, wanted = node.op, node.value
    if op not in _COMPARE_OPS:  # only reachable with a hand-built Compare
        raise InvalidFilter(f"Unknown filter operator {op!r}; expected {_OPS_TEXT}")
    if wanted is None:
        # "eq null" is "not present", "ne null" is "present"; nothing orders against null.
        if op == "eq":
            return lambda obj: not any(_present(v) for v in _collect(obj, t))
        if op == "ne":
            return lambda obj: any(_present(v) for v in _collect(obj, t))
        return lambda obj: False
    test = _value_test("eq" if op == "ne" else op, wanted, t, node.path)

    def any_value(obj: dict[str, Any]) -> bool:
        # Multi-valued attributes match when any value does (RFC 7644 §3.4.2.2); an element
        # of a complex attribute named without a sub-attribute compares its "value".
        for value in _collect(obj, t):
            if isinstance(value, dict):
                value = ci_get(value, "value")
            # null and "" are unassigned (RFC 7643 §2.5, as for "pr"): they compare with nothing.
            if value is not None and value != "" and test(value):
                return True
        return False

    if op == "ne":
        # True when no value equals, so also when the attribute is missing.
        return lambda obj: not any_value(obj)
    return any_value


_COMPILED: dict[int, tuple[Filter, _Scope, _Matcher]] = {}
_COMPILED_MAX = 256


def _compiled(node: Filter, scope: _Scope) -> _Matcher:
    # Keyed by identity, not equality: Compare(p, "eq", True) == Compare(p, "eq", 1) in Python.
    hit = _COMPILED.get(id(node))
    if hit is not None and hit[0] is node and hit[1] is scope:
        return hit[2]
    matcher = _compile(node, scope)
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.clear()
    _COMPILED[id(node)] = (node, scope, matcher)  # holding node keeps its id from being reused
    return matcher


def compile_filter(node: Filter, rtype: ResourceType) -> Callable[[dict[str, Any]], bool]:
    """``node`` as a function of one resource; the fastest way to scan many records
    (compiled once per filter tree and kept while it is reused).

    Raises :class:`InvalidFilter` for a dateTime attribute compared with a non-date.
    """
    return _compiled(node, rtype)


def evaluate(node: Filter, resource: dict[str, Any], rtype: ResourceType) -> bool:
    """Whether ``resource`` (a User or Group as JSON data) matches ``node``.

    Raises :class:`InvalidFilter` for a dateTime attribute compared with a non-date (as
    :func:`check` does, which should be called once per request before looking at data).
    """
    return _compiled(node, rtype)(resource)


# --- evaluation in steps (issue 12) -------------------------------------------------------------
#: Value-filter elements x clauses tested between two checkpoints of evaluate_steps.
_ELEMENT_WORK = 1024


def filter_size(node: Filter) -> int:
    """The clauses in ``node`` (attribute tests and value filters): its cost per record."""
    if isinstance(node, And | Or):
        return filter_size(node.left) + filter_size(node.right)
    if isinstance(node, Not):
        return filter_size(node.expr)
    if isinstance(node, ValuePath):
        return 1 + filter_size(node.filter)
    return 1


def resource_bulk(resource: dict[str, Any]) -> int:
    """A rough size of ``resource`` as filter evaluation sees it: the values of its
    multi-valued attributes (also one level down, in extension objects) plus one per 256
    characters of text. About a microsecond for a typical user; with :func:`filter_size` it
    says when a record is worth evaluating with :func:`evaluate_steps`."""
    n = 0
    for value in resource.values():
        cls = value.__class__
        if cls is list:
            n += len(value)
        elif cls is str:
            n += len(value) >> 8
        elif cls is dict:
            for inner in value.values():
                kind = inner.__class__
                if kind is list:
                    n += len(inner)
                elif kind is str:
                    n += len(inner) >> 8
    return n


def evaluate_steps(
    node: Filter, resource: dict[str, Any], rtype: ResourceType
) -> Generator[None, None, bool]:
    """:func:`evaluate` in steps, for one large record (a group with 100,000 members under a
    value filter of many clauses can cost seconds): a generator that yields after every
    attribute test and every few value-filter elements, each a point where the caller may
    pause, and returns the same answer as :func:`evaluate` (the tests are the same compiled
    closures; only the ``and`` / ``or`` / ``not`` / ``[...]`` around them are walked here)."""
    return _steps(node, rtype, resource)


def _steps(node: Filter, scope: _Scope, obj: dict[str, Any]) -> Generator[None, None, bool]:
    if isinstance(node, And):
        if not (yield from _steps(node.left, scope, obj)):
            return False
        return (yield from _steps(node.right, scope, obj))
    if isinstance(node, Or):
        if (yield from _steps(node.left, scope, obj)):
            return True
        return (yield from _steps(node.right, scope, obj))
    if isinstance(node, Not):
        return not (yield from _steps(node.expr, scope, obj))
    if isinstance(node, ValuePath):
        # As _compile's ValuePath: one and the same element must match the whole filter.
        t = _target(node.path, scope)
        element = _compiled(node.filter, t.definition)
        every = max(1, _ELEMENT_WORK // filter_size(node.filter))
        for i, value in enumerate(_collect(obj, t), 1):
            if isinstance(value, dict) and element(value):
                return True
            if i % every == 0:
                yield
        return False
    matched = _compiled(node, scope)(obj)
    yield
    return matched


def evaluate_element(node: Filter, element: dict[str, Any], attribute: Attribute | None) -> bool:
    """Whether one element of a multi-valued complex attribute matches a value filter.

    For PATCH ``members[value eq "..."]`` (RFC 7644 §3.5.2): ``node`` is the bracketed
    filter and ``attribute`` the definition of ``members`` (None when unknown), e.g.
    ``GROUP_TYPE.resolve(path.attr)``.
    """
    return _compiled(node, attribute)(element)


# --- static checks -----------------------------------------------------------------------------
def check(node: Filter, rtype: ResourceType) -> None:
    """Raise :class:`InvalidFilter` for what RFC 7644 §3.4.2.2 forbids whatever the data.

    Unknown attributes are allowed: they match nothing.
    """
    _check(node, rtype)


def _check(node: Filter, scope: _Scope) -> None:
    if isinstance(node, Compare):
        _check_compare(node, _target(node.path, scope))
    elif isinstance(node, (And, Or)):
        _check(node.left, scope)
        _check(node.right, scope)
    elif isinstance(node, Not):
        _check(node.expr, scope)
    elif isinstance(node, ValuePath):
        t = _target(node.path, scope)
        if t.definition is not None and t.definition.type != "complex":
            raise InvalidFilter(
                f"{str(node.path)!r} is not a complex attribute, so it cannot take a value "
                f"filter [...]"
            )
        _check(node.filter, t.definition)


def _check_compare(node: Compare, t: _Target) -> None:
    op, wanted, name = node.op, node.value, str(node.path)
    shown = json.dumps(wanted)
    if op in _ORDERING_OPS:
        # RFC 7644 §3.4.2.2: gt/ge/lt/le on boolean or binary attributes is a 400 invalidFilter.
        if t.kind in ("boolean", "binary"):
            raise InvalidFilter(f"{op!r} cannot be used with the {t.kind} attribute {name!r}")
        if wanted is None or isinstance(wanted, bool):
            raise InvalidFilter(
                f"{op!r} needs a string, number or date to compare {name!r} with, not {shown}"
            )
    if op in _SUBSTRING_OPS:
        if t.kind in ("boolean", "integer", "decimal"):
            raise InvalidFilter(f"{op!r} cannot be used with the {t.kind} attribute {name!r}")
        if not isinstance(wanted, str):
            raise InvalidFilter(f"{op!r} needs a string value for {name!r}, not {shown}")
    if (
        t.kind == "dateTime"
        and op not in _SUBSTRING_OPS
        and wanted is not None
        and (not isinstance(wanted, str) or _instant(wanted) is None)
    ):
        raise _not_a_date(name, wanted)
