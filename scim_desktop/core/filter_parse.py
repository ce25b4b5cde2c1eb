"""SCIM filter and PATCH path syntax (RFC 7644 §3.4.2.2, §3.5.2): the AST, the limits, the
tokenizer and the parser. Checking and evaluating a parsed filter is
:mod:`scim_desktop.core.filter`, which re-exports every public name here (importers use it).

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
:func:`parse_path` reads a PATCH ``path`` with the same parser.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import NoReturn, TypeAlias

from scim_desktop.core.errors import InvalidFilter, InvalidPath, ScimError
from scim_desktop.core.paths import AttrPath, parse_attr_path

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
    "parse",
    "parse_path",
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
