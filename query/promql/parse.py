"""PromQL text -> our syntax tree, accepting and refusing what Prometheus 2.42 does.

promql-parser (Rust, GreptimeDB's) does the parsing and type checking; this module puts a
front on it (docs/design/prometheus.md §2):

- a **guard** first: the parser holds the GIL and is quadratic in nesting and operator count
  (8,000 nested parentheses take 22 s, stalling the whole server), so a linear pre-scan
  refuses queries over ``MAX_QUERY_BYTES``, ``MAX_NESTING`` or ``MAX_OPERATORS``;
- our **lexer** and **syntax checker** give every error a ``line:column`` and Prometheus'
  wording, and refuse the syntax newer than 2.42 that the parser accepts (unknown functions
  such as ``info``, ``or`` inside braces, durations without a unit);
- the parser's own messages are translated to 2.42's (``range vector`` for ``matrix``,
  double quotes), regexes are checked with RE2 as Go 1.19 would, and ``@`` timestamps are
  read from the text (the binding panics on negative ones, with an exception that is not an
  ``Exception``).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import duckdb
import promql_parser as pp

from . import nodes
from .lexer import LexError, Token, tokenize
from .syntax import FUNCTIONS_2_42, first_problem, selector_problem

MAX_QUERY_BYTES = 64 * 1024
MAX_NESTING = 256
MAX_OPERATORS = 1_000  # 1,000 `+` parse in 0.3 s (GIL held); 2,000 in 0.8 s

pp.register_extra_functions([pp.Function("holt_winters", [pp.ValueType.Matrix,
                                                          pp.ValueType.Scalar,
                                                          pp.ValueType.Scalar],
                                          pp.ValueType.Vector)])


class ParseError(Exception):
    """A query Prometheus 2.42 would refuse, with its message and byte offset."""

    def __init__(self, message: str, pos: int, text: str) -> None:
        line = text.encode()[:pos].count(b"\n") + 1
        column = pos - (text.encode()[:pos].rfind(b"\n") + 1) + 1
        super().__init__(f"{line}:{column}: parse error: {message}")
        self.message = message
        self.pos = pos


class QueryTooComplex(ParseError):
    """Refused by the guard before the parser saw it (no position: it is about the whole)."""

    def __init__(self, message: str) -> None:
        Exception.__init__(self, f"query too complex: {message}")
        self.message = message
        self.pos = 0


# ---- the guard -------------------------------------------------------------------------

_OPERATOR_RE = re.compile(r"[-+*/%^<>=!,@]|\b(?:and|or|unless|atan2)\b", re.IGNORECASE)


def _without_strings(text: str) -> str:
    """``text`` with every string literal's content blanked out (linear, escape-aware)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "\"'`":
            j = i + 1
            while j < n and text[j] != ch:
                j += 2 if ch != "`" and text[j] == "\\" else 1
            out.append('""')
            i = j + 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def guard(text: str) -> None:
    """Refuse a query the parser would take too long over (it holds the GIL meanwhile)."""
    size = len(text.encode())
    if size > MAX_QUERY_BYTES:
        raise QueryTooComplex(f"{size} bytes, the limit is {MAX_QUERY_BYTES}")
    bare = _without_strings(text)
    depth = deepest = 0
    for ch in bare:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    if deepest > MAX_NESTING:
        raise QueryTooComplex(f"brackets nested {deepest} deep, the limit is {MAX_NESTING}")
    operators = len(_OPERATOR_RE.findall(bare))
    if operators > MAX_OPERATORS:
        raise QueryTooComplex(f"{operators} operators and commas, the limit is {MAX_OPERATORS}")


# ---- locating the parser's errors ------------------------------------------------------

_BINARY_OPS = frozenset({"+", "-", "*", "/", "%", "^", "==", "!=", "<", ">", "<=", ">=", "and",
                         "or", "unless", "atan2"})
_COMPARISONS = frozenset({"==", "!=", "<", ">", "<=", ">="})
_MODIFIER_WORDS = frozenset({"bool", "on", "ignoring", "group_left", "group_right"})


def _is_binary(tokens: list[Token], k: int) -> bool:
    tok = tokens[k]
    if tok.kind not in ("op", "keyword") or tok.text.lower() not in _BINARY_OPS:
        return False
    if tok.text in "+-" and k > 0:  # a sign, not an operator, after an operator or opening
        prev = tokens[k - 1]
        return prev.kind not in ("op", "(", ",", "[") and not (
            prev.kind == "keyword" and prev.text.lower() in _BINARY_OPS | _MODIFIER_WORDS)
    return k > 0


def _operand_start(tokens: list[Token], k: int) -> int:
    """Offset of the first token of the operand that ends just before token ``k``."""
    j, depth = k - 1, 0
    while j >= 0:
        tok = tokens[j]
        if tok.kind in (")", "]", "}"):
            depth += 1
        elif tok.kind in ("(", "[", "{"):
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and (tok.kind == "," or _is_binary(tokens, j)):
            break
        j -= 1
    j += 1
    while j < k and tokens[j].text.lower() in _MODIFIER_WORDS | {"(", ")"} and tokens[j].kind in (
            "keyword", "(", ")", "ident"):
        j = _skip_modifier(tokens, j)
    return tokens[j].pos


def _skip_modifier(tokens: list[Token], j: int) -> int:
    j += 1
    if tokens[j].kind == "(":
        while tokens[j].kind != ")":
            j += 1
        j += 1
    return j


def _operand_end(tokens: list[Token], k: int) -> int:
    """Index of the token just past the operand that starts at token ``k``."""
    depth = 0
    while tokens[k].kind != "eof":
        tok = tokens[k]
        if tok.kind in ("(", "[", "{"):
            depth += 1
        elif tok.kind in (")", "]", "}"):
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and (tok.kind == "," or _is_binary(tokens, k)):
            break
        k += 1
    return k


def _type_of(text: str) -> str | None:
    """The value type of ``text`` alone, or None if it does not parse by itself."""
    try:
        return _convert_type(pp.parse(text))
    except BaseException as exc:  # noqa: BLE001 - the binding panics with BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        return None


def _convert_type(expr: Any) -> str:
    if isinstance(expr, pp.MatrixSelector | pp.SubqueryExpr):
        return "matrix"
    if isinstance(expr, pp.StringLiteral):
        return "string"
    if isinstance(expr, pp.NumberLiteral):
        return "scalar"
    if isinstance(expr, pp.ParenExpr | pp.UnaryExpr):
        return _convert_type(expr.expr)
    if isinstance(expr, pp.Call):
        return _VALUE_TYPES[str(expr.func.return_type)]
    if isinstance(expr, pp.BinaryExpr):
        both = {_convert_type(expr.lhs), _convert_type(expr.rhs)}
        return "scalar" if both == {"scalar"} else "vector"
    return "vector"


_VALUE_TYPES = {"ValueType.Matrix": "matrix", "ValueType.Vector": "vector",
                "ValueType.Scalar": "scalar", "ValueType.String": "string"}
_TYPE_WORDS = {"matrix": "range vector", "vector": "instant vector", "scalar": "scalar",
               "string": "string"}


def _bad_operand(text: str, tokens: list[Token]) -> int:
    for k in range(len(tokens)):
        if not _is_binary(tokens, k):
            continue
        start = _operand_start(tokens, k)
        if _type_of(text.encode()[start:tokens[k].pos].decode()) in ("matrix", "string"):
            return start
        r = k + 1
        while tokens[r].kind == "keyword" and tokens[r].text.lower() in _MODIFIER_WORDS:
            r = _skip_modifier(tokens, r)
        end = _operand_end(tokens, r)
        span = text.encode()[tokens[r].pos:tokens[end].pos].decode()
        if _type_of(span) in ("matrix", "string"):
            return tokens[r].pos
    return 0


def _call_token(tokens: list[Token], name: str) -> int:
    for k, tok in enumerate(tokens[:-1]):
        if tok.text == name and tokens[k + 1].kind == "(":
            return k
    return -1


def _call_args(tokens: list[Token], k: int) -> list[tuple[int, int]]:
    """(first, past-last) token indexes of each argument of the call whose name is token k."""
    args, j = [], k + 2
    while tokens[j].kind not in (")", "eof"):
        end = _operand_end_arg(tokens, j)
        args.append((j, end))
        j = end + 1 if tokens[end].kind == "," else end
    return args


def _operand_end_arg(tokens: list[Token], k: int) -> int:
    depth = 0
    while tokens[k].kind != "eof":
        kind = tokens[k].kind
        if kind in ("(", "[", "{"):
            depth += 1
        elif kind in (")", "]", "}"):
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and kind == ",":
            break
        k += 1
    return k


def _bad_argument(text: str, tokens: list[Token], name: str, got: str) -> int:
    raw = text.encode()
    for k, tok in enumerate(tokens[:-1]):
        if tok.text != name or tokens[k + 1].kind != "(":
            continue
        for first, end in _call_args(tokens, k):
            if _type_of(raw[tokens[first].pos:tokens[end].pos].decode()) == got:
                return tokens[first].pos
    return 0


def _aggregation_param(tokens: list[Token]) -> int:
    for k, tok in enumerate(tokens):
        if tok.kind == "keyword" and tok.text.lower() in ("topk", "bottomk", "quantile",
                                                          "count_values"):
            j = k + 1
            if tokens[j].text.lower() in ("by", "without"):
                j = _skip_modifier(tokens, j)
            return tokens[j + 1].pos
    return 0


def _first(tokens: list[Token], test: Callable[[int], bool]) -> int:
    for k in range(len(tokens)):
        if test(k):
            return k
    return -1


def _pos_of(tokens: list[Token], k: int, default: int = 0) -> int:
    return tokens[k].pos if k >= 0 else default


def _matcher_pos(tokens: list[Token], regex: str, name: str | None = None) -> int:
    """Offset of the label name of the regex matcher ``name =~ "regex"`` (its first one)."""
    candidates = [k for k, tok in enumerate(tokens[:-2])
                  if tokens[k + 1].text in ("=~", "!~") and (name is None or tok.text == name)]
    for k in candidates:
        if tokens[k + 2].kind == "string" and regex in tokens[k + 2].text:
            return tokens[k].pos
    return tokens[candidates[0]].pos if candidates else 0


def _quotes(message: str) -> str:
    return re.sub(r"'([^']*)'", r'"\1"', message)


def _locate(message: str, text: str, tokens: list[Token]) -> tuple[str, int]:
    """The parser's message in 2.42's words, and the byte offset it is about."""
    def kw(word: str) -> Callable[[int], bool]:
        return lambda k: tokens[k].kind == "keyword" and tokens[k].text.lower() == word

    if m := re.fullmatch(r"expected type (\w+) in call to function '(\w+)', got (\w+)", message):
        want, name, got = m.groups()
        return (f'expected type {_TYPE_WORDS[want]} in call to function "{name}", got '
                f"{_TYPE_WORDS[got]}", _bad_argument(text, tokens, name, got))
    if m := re.fullmatch(r"expected (\d+) argument\(s\) in call to '(\w+)', got (\d+)", message):
        return _quotes(message), _pos_of(tokens, _call_token(tokens, m.group(2)))
    if m := re.fullmatch(r"expected type (\w+) in aggregation expression, got (\w+)", message):
        return (f"expected type {_TYPE_WORDS[m.group(1)]} in aggregation parameter, got "
                f"{_TYPE_WORDS[m.group(2)]}", _aggregation_param(tokens))
    if message.startswith("wrong number of arguments for aggregate expression"):
        return message, _pos_of(tokens, _first(tokens, lambda k: tokens[k].kind == "keyword"))
    if message == "binary expression must contain only scalar and instant vector types":
        return message, _bad_operand(text, tokens)
    if m := re.fullmatch(r"metric name must not be set twice: '(.*)' or '(.*)'", message):
        return _quotes(message), 0
    if message == "vector selector must contain at least one non-empty matcher":
        brace = _first(tokens, lambda k: tokens[k].kind == "{")
        if brace > 0 and tokens[brace - 1].kind == "ident":
            brace -= 1
        return message, _pos_of(tokens, brace)
    if m := re.fullmatch(r"(set operator|no grouping allowed for) '(\w+)'.*", message):
        op = _first(tokens, kw(m.group(2)))
        return _quotes(message), _operand_start(tokens, op) if op >= 0 else 0
    if re.fullmatch(r"label '.*' must not occur in ON and GROUP clause at once", message):
        on = _first(tokens, lambda k: tokens[k].text.lower() in ("on", "ignoring"))
        return _quotes(message), _pos_of(tokens, on - 1 if on > 0 else -1)
    if message == "bool modifier can only be used on comparison operators":
        return message, _pos_of(tokens, _first(tokens, kw("bool")) - 1)
    if message == "comparisons between scalars must use BOOL modifier":
        return message, _pos_of(tokens, _first(tokens, lambda k: tokens[k].text in _COMPARISONS
                                                and tokens[k].kind == "op"))
    if message == "ranges only allowed for vector selectors":
        return message, _pos_of(tokens, _first(
            tokens, lambda k: tokens[k].kind == "[" and k > 0 and tokens[k - 1].kind == ")"))
    if message == "duration must be greater than 0":
        return message, _pos_of(tokens, _first(
            tokens, lambda k: tokens[k].kind == "duration" and not any(
                c in "123456789" for c in tokens[k].text)))
    if message == "trailing commas not allowed in function call args":
        return message, _pos_of(tokens, _first(
            tokens, lambda k: tokens[k].kind == "," and tokens[k + 1].kind == ")"))
    if m := re.fullmatch(r"illegal regex for (.*)", message, re.DOTALL):
        problem = regex_error(m.group(1))
        if problem is not None:
            return problem, _matcher_pos(tokens, m.group(1))
    if m := re.fullmatch(r"unknown function with name '(.*)'", message):
        return _quotes(message), _pos_of(tokens, _call_token(tokens, m.group(1)))
    for pattern, replacement, anchor in _NODE_ERRORS:
        if re.fullmatch(pattern, message):
            k = _first(tokens, anchor(tokens))
            wording = re.sub(pattern, replacement, message) if replacement else message
            return wording, _operand_start(tokens, k) if k >= 0 else 0
    return _quotes(message), 0


def _token_is(*texts: str) -> Callable[[list[Token]], Callable[[int], bool]]:
    def anchor(tokens: list[Token]) -> Callable[[int], bool]:
        seen: list[int] = []

        def test(k: int) -> bool:
            if "[again" in texts:  # a range or subquery straight after another
                return tokens[k].kind == "[" and k > 0 and tokens[k - 1].kind in ("]", ")")
            if tokens[k].text.lower() in texts:
                seen.append(k)
                return len(seen) == (2 if "again" in texts else 1)
            return False
        return test
    return anchor


_NODE_ERRORS: list[tuple[str, str | None, Callable[[list[Token]],
                                                  Callable[[int], bool]]]] = [
    (r"@ <timestamp> may not be set multiple times", None, _token_is("@", "again")),
    (r"offset may not be set multiple times", None, _token_is("offset", "again")),
    (r"offset modifier must be preceded by an vector selector or matrix selector or a subquery",
     "offset modifier must be preceded by an instant vector selector or range vector selector "
     "or a subquery", _token_is("offset")),
    (r"subquery is only allowed on vector, got (\w+) instead",
     r"subquery is only allowed on instant vector, got \1 instead", _token_is("[again")),
    (r"timestamp out of bounds for @ modifier: inf", "timestamp out of bounds for @ modifier: +Inf",
     _token_is("@")),
    (r"timestamp out of bounds for @ modifier: -inf",
     "timestamp out of bounds for @ modifier: -Inf", _token_is("@")),
    (r"timestamp out of bounds for @ modifier: .*", None, _token_is("@")),
]


# ---- regexes as Go 1.19 checks them ----------------------------------------------------

_RE2_TO_GO = [("missing )", "missing closing )"), ("missing ]", "missing closing ]"),
              ("bad repetition operator", "invalid nested repetition operator"),
              ("invalid named capture group", "invalid named capture"),
              ("invalid repetition size", "invalid repeat count"),
              ("invalid perl operator", "invalid or unsupported Perl syntax")]
_re2 = threading.local()


def regex_error(pattern: str) -> str | None:
    """Go's ``regexp.Compile`` error for the anchored pattern, or None when it compiles.

    DuckDB's RE2 is the checker: it rejects what Go 1.19 rejects (google-re2 and Rust's
    regex accept ``(?<name>…)``), and its messages map to Go's one for one."""
    anchored = f"^(?:{pattern})$"
    con = getattr(_re2, "con", None)
    if con is None:
        con = _re2.con = duckdb.connect()
    try:
        con.execute("SELECT regexp_full_match('', ?)", [anchored]).fetchall()
    except duckdb.Error as exc:
        detail = str(exc).split("Error: ", 1)[-1]
        what, _, fragment = detail.partition(": ")
        for re2_words, go_words in _RE2_TO_GO:
            if what == re2_words:
                what = go_words
        return f"error parsing regexp: {what}: `{fragment}`"
    return None


# ---- conversion to our nodes -----------------------------------------------------------

def _ms(delta: timedelta | None) -> int:
    if delta is None:
        return 0
    return (delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000)


def go_round(x: float) -> int:
    """Go's ``math.Round``: half away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~",
        "MatchOp.NotRe": "!~"}
_CARDS = {"VectorMatchCardinality.OneToOne": "one-to-one",
          "VectorMatchCardinality.ManyToOne": "many-to-one",
          "VectorMatchCardinality.OneToMany": "one-to-many",
          "VectorMatchCardinality.ManyToMany": "many-to-many"}


class _Converter:
    def __init__(self, text: str, tokens: list[Token], at_values: list[tuple[float, int]]):
        self.text = text
        self.tokens = tokens
        self.at_values = list(at_values)

    def at(self, modifier: Any) -> nodes.At | None:
        if modifier is None:
            return None
        kind = str(modifier.type)
        if kind == "AtModifierType.Start":
            return nodes.At("start")
        if kind == "AtModifierType.End":
            return nodes.At("end")
        value, k = self.at_values.pop(0)
        if not -(2.0**63) < value < 2.0**63:  # seconds, as 2.42 checks them
            raise ParseError(f"timestamp out of bounds for @ modifier: {value:f}",
                             _operand_start(self.tokens, k), self.text)
        return nodes.At("at", max(-(2**63), min(2**63 - 1, go_round(value * 1000))))

    def selector(self, vs: Any) -> nodes.VectorSelector:
        matchers = []
        for m in vs.matchers.matchers:
            op = _OPS[str(m.op)]
            if op in ("=~", "!~") and (problem := regex_error(m.value)) is not None:
                raise ParseError(problem, _matcher_pos(self.tokens, m.value, m.name), self.text)
            matchers.append(nodes.Matcher(m.name, op, m.value))  # type: ignore[arg-type]
        if vs.name is not None and not any(m.name == "__name__" for m in matchers):
            matchers.insert(0, nodes.Matcher("__name__", "=", vs.name))
        return nodes.VectorSelector(vs.name, tuple(matchers), _ms(vs.offset), self.at(vs.at))


    def expr(self, e: Any) -> nodes.Expr:  # noqa: C901 - one branch per node class
        if isinstance(e, pp.NumberLiteral):
            return nodes.NumberLiteral(e.val)
        if isinstance(e, pp.StringLiteral):
            return nodes.StringLiteral(e.val)
        if isinstance(e, pp.VectorSelector):
            return self.selector(e)
        if isinstance(e, pp.MatrixSelector):
            return nodes.MatrixSelector(self.selector(e.vector_selector), _ms(e.range))
        if isinstance(e, pp.SubqueryExpr):
            inner = self.expr(e.expr)
            return nodes.SubqueryExpr(inner, _ms(e.range), _ms(e.step) if e.step else None,
                                      _ms(e.offset), self.at(e.at))
        if isinstance(e, pp.Call):
            return nodes.Call(e.func.name, tuple(self.expr(a) for a in e.args),
                              _VALUE_TYPES[str(e.func.return_type)])  # type: ignore[arg-type]
        if isinstance(e, pp.AggregateExpr):
            param = self.expr(e.param) if e.param is not None else None
            inner = self.expr(e.expr)
            mod = e.modifier
            return nodes.AggregateExpr(
                str(e.op), inner, param, tuple(mod.labels) if mod else (),
                mod is not None and str(mod.type) == "AggModifierType.Without")
        if isinstance(e, pp.BinaryExpr):
            return self.binary(e)
        if isinstance(e, pp.UnaryExpr):
            return nodes.UnaryExpr(self.expr(e.expr))
        if isinstance(e, pp.ParenExpr):
            return nodes.ParenExpr(self.expr(e.expr))
        raise ParseError(f"unsupported expression {type(e).__name__}", 0, self.text)

    def binary(self, e: Any) -> nodes.BinaryExpr:
        chain = [e]  # a + b + c + …: left-deep, walked without recursion
        while isinstance(chain[-1].lhs, pp.BinaryExpr):
            chain.append(chain[-1].lhs)
        lhs = self.expr(chain[-1].lhs)
        for node in reversed(chain):
            lhs = self.combine(node, lhs, self.expr(node.rhs))
        assert isinstance(lhs, nodes.BinaryExpr)
        return lhs

    def combine(self, e: Any, lhs: nodes.Expr, rhs: nodes.Expr) -> nodes.BinaryExpr:
        mod = e.modifier
        matching = None
        if lhs.type == "vector" and rhs.type == "vector":
            card = _CARDS[str(mod.card)] if mod is not None else "one-to-one"
            labels: tuple[str, ...] = ()
            on = False
            if mod is not None and mod.matching is not None:
                on = str(mod.matching.type) == "LabelModifierType.Include"
                labels = tuple(mod.matching.labels)
            include = tuple(mod.group_labels or ()) if mod is not None else ()
            matching = nodes.VectorMatching(card, on, labels, include)  # type: ignore[arg-type]
        return nodes.BinaryExpr(str(e.op), lhs, rhs, bool(mod and mod.return_bool), matching)


# ---- the entry point -------------------------------------------------------------------

def _check_numbers(text: str, tokens: list[Token]) -> None:
    for tok in tokens:
        if tok.kind == "number" and not re.fullmatch(
                r"0[xX][0-9a-fA-F]+|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", tok.text):
            raise ParseError(f'error parsing number: strconv.ParseFloat: parsing "{tok.text}": '
                             "invalid syntax", tok.pos, text)


def _for_binding(text: str, tokens: list[Token]) -> str:
    """``text`` with each raw string (`` `\\d+` ``) written as the double-quoted string it
    means: promql-parser 0.12 decodes escapes inside raw strings and refuses ``\\d``."""
    if "`" not in text:
        return text
    raw, out, last = text.encode(), [], 0
    for tok in tokens:
        if tok.kind == "string" and tok.text.startswith("`"):
            body = tok.text[1:-1].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            out += [raw[last:tok.pos].decode(), f'"{body}"']
            last = tok.pos + len(tok.text.encode())
    return "".join([*out, raw[last:].decode()])


def parse(text: str) -> nodes.Expr:
    """The syntax tree of ``text``; raises ``ParseError`` worded as Prometheus 2.42."""
    guard(text)
    if not text.strip() or not _without_strings(text).strip():
        raise ParseError("no expression found in input", 0, text)
    try:
        tokens = tokenize(text)
    except LexError as exc:
        earlier, _ = first_problem(exc.tokens)
        if earlier is not None and earlier.pos < exc.pos:
            raise ParseError(earlier.message, earlier.pos, text) from None
        raise ParseError(exc.message, exc.pos, text) from None
    _check_numbers(text, tokens)
    problem, at_values = first_problem(tokens)
    if problem is not None:
        raise ParseError(problem.message, problem.pos, text)
    try:
        tree = pp.parse(_for_binding(text, tokens))
    except BaseException as exc:  # noqa: BLE001 - pyo3 panics derive from BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        message, pos = _locate(str(exc), text, tokens)
        raise ParseError(message, pos, text) from None
    try:
        return _Converter(text, tokens, at_values).expr(tree)
    except ParseError:
        raise
    except RecursionError:
        raise QueryTooComplex("expressions nested too deep") from None
    except BaseException as exc:  # noqa: BLE001 - a panic while reading the tree
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise ParseError(f"unsupported query: {exc}", 0, text) from None


def _string_value(token: Token) -> str:
    if token.text.startswith("`"):
        return token.text[1:-1]
    value = pp.parse(token.text)  # the parser decodes Go's escapes; the lexer checked them
    assert isinstance(value, pp.StringLiteral)
    return str(value.val)


def parse_selector(text: str) -> nodes.VectorSelector:
    """A lone series selector, as the ``match[]`` of the metadata endpoints takes it
    (Prometheus' ``ParseMetricSelector``: no operators, ranges or modifiers; a selector that
    matches the empty string is not refused here: the endpoints word that themselves)."""
    guard(text)
    try:
        tokens = tokenize(text)
    except LexError as exc:
        earlier = selector_problem(exc.tokens)
        if earlier is not None and earlier.pos < exc.pos:
            raise ParseError(earlier.message, earlier.pos, text) from None
        raise ParseError(exc.message, exc.pos, text) from None
    problem = selector_problem(tokens)
    if problem is not None:
        raise ParseError(problem.message, problem.pos, text)
    name = tokens[0].text if tokens[0].kind == "ident" else None
    matchers = [nodes.Matcher("__name__", "=", name)] if name is not None else []
    k = 0
    while k < len(tokens):
        if tokens[k].kind == "op" and tokens[k].text in ("=", "!=", "=~", "!~") and k > 0:
            label, op, value = tokens[k - 1].text, tokens[k].text, _string_value(tokens[k + 1])
            if op in ("=~", "!~") and (problem_text := regex_error(value)) is not None:
                raise ParseError(problem_text, tokens[k - 1].pos, text)
            matchers.append(nodes.Matcher(label, op, value))  # type: ignore[arg-type]
        k += 1
    return nodes.VectorSelector(name, tuple(matchers))


__all__ = ["FUNCTIONS_2_42", "MAX_NESTING", "MAX_OPERATORS", "MAX_QUERY_BYTES", "ParseError",
           "QueryTooComplex", "guard", "parse", "parse_selector", "regex_error"]
