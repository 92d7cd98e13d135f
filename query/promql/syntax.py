"""Where a PromQL syntax error is, in Prometheus 2.42's words.

promql-parser answers most syntax errors with a bare ``invalid promql query``.  This checker
walks the grammar over the lexer's tokens, building nothing, and stops at the first token
the grammar does not allow, worded as Prometheus' parser words it (``unexpected identifier
"bar"``, ``unexpected "}" in label matching, expected string``).  Only the parser decides
what is valid; this only says where and why when it refused.
"""

from __future__ import annotations

from .lexer import AGGREGATORS, Token

_BINARY = frozenset({"+", "-", "*", "/", "%", "^", "==", "!=", "<", ">", "<=", ">=", "and", "or",
                     "unless", "atan2"})
_VALUES = frozenset({"inf", "nan"})

# The functions Prometheus 2.42 knows; the parser knows newer ones too (``info``, ``limitk``).
FUNCTIONS_2_42 = frozenset("""
abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp
clamp_max clamp_min cos cosh count_over_time days_in_month day_of_month day_of_week day_of_year
deg delta deriv exp floor histogram_count histogram_sum histogram_fraction histogram_quantile
holt_winters hour idelta increase irate label_replace label_join last_over_time ln log10 log2
max_over_time min_over_time minute month pi predict_linear present_over_time quantile_over_time
rad rate resets round scalar sgn sin sinh sort sort_desc sqrt stddev_over_time stdvar_over_time
sum_over_time tan tanh time timestamp vector year""".split())


class SyntaxProblem(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def describe(token: Token) -> str:
    """A token as Prometheus' parser names it in an error."""
    if token.kind == "eof":
        return "end of input"
    if token.kind == "ident":
        if token.text.lower() in _VALUES:
            return f'number "{token.text}"'
        return f'identifier "{token.text}"'
    if token.kind in ("number", "duration", "string"):
        return f'{token.kind} "{token.text}"'
    if token.kind == "keyword":
        word = token.text.lower()
        if word in AGGREGATORS:
            return f"<aggr:{word}>"
        if word in ("and", "or", "unless", "atan2"):
            return f"<op:{word}>"
        return f"<{word}>"
    if token.kind == "op":
        return f"<op:{token.text}>"
    return f'"{token.text}"'


class _Checker:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.at_values: list[tuple[float, int]] = []  # each numeric ``@`` and its token index

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def word(self) -> str:
        return self.tok.text.lower() if self.tok.kind in ("keyword", "ident") else self.tok.text

    def fail(self, context: str = "") -> SyntaxProblem:
        return SyntaxProblem(f"unexpected {describe(self.tok)}{context}", self.tok.pos)

    def take(self, kind: str, context: str = "") -> Token:
        if self.tok.kind != kind:
            raise self.fail(context)
        token = self.tok
        self.i += 1
        return token

    def check(self) -> None:
        self.expr()
        if self.tok.kind != "eof":
            raise self.fail()

    def expr(self) -> None:
        self.unary()
        while self.word() in _BINARY and self.tok.kind in ("op", "keyword"):
            self.i += 1
            self.bin_modifiers()
            self.unary()

    def bin_modifiers(self) -> None:
        if self.word() == "bool":
            self.i += 1
        if self.word() in ("on", "ignoring"):
            self.i += 1
            self.labels("grouping opts")
            if self.word() in ("group_left", "group_right"):
                self.i += 1
                if self.tok.kind == "(":
                    self.labels("grouping opts")

    def labels(self, where: str) -> None:
        self.take("(", f' in {where}, expected "("')
        while self.tok.kind != ")":
            if self.tok.kind not in ("ident", "keyword"):
                raise self.fail(f' in {where}, expected label')
            self.i += 1
            if self.tok.kind == ",":
                self.i += 1
            elif self.tok.kind != ")":
                raise self.fail(f' in {where}, expected "," or ")"')
        self.i += 1

    def unary(self) -> None:
        while self.tok.kind == "op" and self.tok.text in "+-":
            self.i += 1
        self.primary()
        self.postfix()

    def primary(self) -> None:
        tok, word = self.tok, self.word()
        if tok.kind in ("number", "string") or (tok.kind == "ident" and word in _VALUES):
            self.i += 1
        elif tok.kind == "(":
            self.i += 1
            self.expr()
            self.take(")")
        elif tok.kind == "keyword" and word in AGGREGATORS:
            self.aggregation()
        elif tok.kind == "ident" and self.tokens[self.i + 1].kind == "(":
            if tok.text not in FUNCTIONS_2_42:
                raise SyntaxProblem(f'unknown function with name "{tok.text}"', tok.pos)
            self.i += 1
            self.call_args()
        elif tok.kind == "ident":
            self.i += 1
            if self.tok.kind == "{":
                self.matchers()
        elif tok.kind == "{":
            self.matchers()
        else:
            raise self.fail()

    def aggregation(self) -> None:
        if self.word() in ("limitk", "limit_ratio"):
            raise SyntaxProblem(f'unknown function with name "{self.word()}"', self.tok.pos)
        self.i += 1
        grouped = self.word() in ("by", "without")
        if grouped:
            self.i += 1
            self.labels("grouping opts")
            if self.word() in ("by", "without"):
                raise self.fail(" in aggregation")
        self.call_args()
        if self.word() in ("by", "without"):
            if grouped:
                raise self.fail(" in aggregation")
            self.i += 1
            self.labels("grouping opts")

    def call_args(self) -> None:
        self.take("(")
        while self.tok.kind != ")":
            self.expr()
            if self.tok.kind == ",":
                self.i += 1
            elif self.tok.kind != ")":
                raise self.fail()
        self.i += 1

    def matchers(self) -> None:
        self.take("{")
        while self.tok.kind != "}":
            if self.tok.kind != "ident":
                raise self.fail(' in label matching, expected identifier or "}"')
            self.i += 1
            if self.tok.kind != "op" or self.tok.text not in ("=", "!=", "=~", "!~"):
                raise self.fail(" in label matching, expected label matching operator")
            self.i += 1
            self.take("string", " in label matching, expected string")
            if self.tok.kind == ",":
                self.i += 1
            elif self.tok.kind != "}":
                raise self.fail(' in label matching, expected "," or "}"')
        self.i += 1

    def postfix(self) -> None:
        while True:
            word = self.word()
            if self.tok.kind == "[":
                self.i += 1
                self.take("duration", " in subquery or range")
                if self.tok.kind == ":":
                    self.i += 1
                    if self.tok.kind == "duration":
                        self.i += 1
                self.take("]", ' in subquery or range, expected ":" or "]"')
            elif word == "offset" and self.tok.kind == "keyword":
                self.i += 1
                if self.tok.kind == "op" and self.tok.text in "+-":
                    self.i += 1
                self.take("duration", " in offset, expected duration")
            elif self.tok.kind == "op" and self.tok.text == "@":
                self.i += 1
                self.at()
            else:
                return

    def at(self) -> None:
        if self.word() in ("start", "end"):
            self.i += 1
            self.take("(", " in @, expected timestamp")
            self.take(")", " in @, expected timestamp")
            return
        at, sign = self.i - 1, 1.0
        if self.tok.kind == "op" and self.tok.text in "+-":
            sign = -1.0 if self.tok.text == "-" else 1.0
            self.i += 1
        if self.tok.kind == "number" or (self.tok.kind == "ident" and self.word() in _VALUES):
            text = self.tok.text
            value = float.fromhex(text) if text[:2] in ("0x", "0X") else float(text)
            self.at_values.append((sign * value, at))
            self.i += 1
            return
        raise self.fail(" in @, expected timestamp")


def selector_problem(tokens: list[Token]) -> SyntaxProblem | None:
    """The first token a lone series selector (``match[]``: ``name{matchers}``) does not
    allow."""
    checker = _Checker(tokens)
    try:
        if checker.tok.kind == "ident" and checker.word() not in _VALUES:
            checker.i += 1
            if checker.tok.kind == "{":
                checker.matchers()
        elif checker.tok.kind == "{":
            checker.matchers()
        else:
            raise checker.fail()
        if checker.tok.kind != "eof":
            raise checker.fail()
    except SyntaxProblem as problem:
        return problem
    return None


def first_problem(tokens: list[Token]) -> tuple[SyntaxProblem | None, list[tuple[float, int]]]:
    """The first token the grammar does not allow (None when the shape is fine), and the
    numeric ``@`` timestamps in text order with the index of their ``@`` token."""
    checker = _Checker(tokens)
    try:
        checker.check()
    except SyntaxProblem as problem:
        return problem, checker.at_values
    return None, checker.at_values
