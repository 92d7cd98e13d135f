"""A PromQL lexer with positions, as Prometheus 2.42's lexer cuts and rejects the text.

promql-parser reports no positions and words some lexical errors its own way; this lexer
runs first and gives each token its byte offset, so ``parse`` can answer ``1:10: parse
error: …`` exactly as Prometheus would, and find the token an error is about.  It decodes
nothing (string escapes are checked, not kept): the parser builds the values.
"""

from __future__ import annotations

from dataclasses import dataclass

# ident keyword number duration string op ( ) { } [ ] , : eof
Kind = str

# Words that are keywords wherever an identifier may stand (Prometheus matches them in any case).
KEYWORDS = frozenset({
    "and", "or", "unless", "atan2", "by", "without", "on", "ignoring", "group_left",
    "group_right", "bool", "offset", "start", "end",
    "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk", "bottomk",
    "quantile", "count_values", "limitk", "limit_ratio",
})
AGGREGATORS = frozenset({"sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk",
                         "bottomk", "quantile", "count_values", "limitk", "limit_ratio"})
UNITS = "smhdwy"
_ESCAPES = {"a", "b", "f", "n", "r", "t", "v", "\\"}


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str
    pos: int  # byte offset of the first character
    depth: int  # parentheses open before this token


class LexError(Exception):
    """A lexical error at a byte offset, worded as Prometheus' lexer words it."""

    def __init__(self, message: str, pos: int, tokens: list[Token] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        # the tokens before the error, ending with an ``eof`` at it: the parser reads
        # tokens as the lexer makes them, so a syntax error before this one is reported first
        self.tokens = tokens or []


def go_rune(ch: str) -> str:
    """Go's ``%q`` of a rune: ``'.'``."""
    return "'" + ch.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _is_ident_start(ch: str) -> bool:
    return ch.isascii() and (ch.isalpha() or ch in "_:")


def _is_ident_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch in "_:")


def _is_label_char(ch: str, first: bool) -> bool:
    return ch.isascii() and (ch.isalpha() or ch == "_" or (not first and ch.isdigit()))


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.raw = text.encode()
        self.i = 0
        self.tokens: list[Token] = []
        self.parens: list[int] = []
        self.bracket: int | None = None
        self.colon = False

    def byte_pos(self, i: int) -> int:
        return len(self.text[:i].encode())

    def emit(self, kind: Kind, start: int) -> None:
        self.tokens.append(Token(kind, self.text[start:self.i], self.byte_pos(start),
                                 len(self.parens)))

    def fail(self, message: str, at: int) -> LexError:
        pos = self.byte_pos(at)
        return LexError(message, pos, [*self.tokens, Token("eof", "", pos, len(self.parens))])

    def run(self) -> list[Token]:
        text = self.text
        while True:
            self.skip_space()
            if self.i >= len(text):
                if self.bracket is not None:
                    raise self.fail("unclosed left bracket", self.i)
                if self.parens:
                    raise self.fail("unclosed left parenthesis", self.i)
                self.emit("eof", self.i)
                return self.tokens
            ch = text[self.i]
            if self.bracket is not None and self.in_brackets(ch):
                continue
            self.statement(ch)

    def skip_space(self) -> None:
        text = self.text
        while self.i < len(text):
            if text[self.i] in " \t\n\r":
                self.i += 1
            elif text[self.i] == "#":
                while self.i < len(text) and text[self.i] != "\n":
                    self.i += 1
            else:
                return

    def in_brackets(self, ch: str) -> bool:
        """Durations, ``:`` and ``]`` inside ``[…]``; False leaves ``ch`` to ``statement``."""
        start = self.i
        if ch.isdigit():
            self.number_or_duration(in_brackets=True)
            return True
        if ch == ":":
            if self.colon:
                raise self.fail("unexpected colon ':'", start)
            self.colon = True
            self.i += 1
            self.emit(":", start)
            return True
        if ch == "[":
            raise self.fail("unexpected left bracket '['", start)
        if ch == "]":
            self.bracket = None
            self.i += 1
            self.emit("]", start)
            return True
        return False

    def statement(self, ch: str) -> None:
        text, start = self.text, self.i
        nxt = text[self.i + 1] if self.i + 1 < len(text) else ""
        if ch == ",":
            self.i += 1
            self.emit(",", start)
        elif ch == "(":
            self.i += 1
            self.emit("(", start)
            self.parens.append(start)
        elif ch == ")":
            if not self.parens:
                raise self.fail("unexpected right parenthesis ')'", start + 1)
            self.parens.pop()
            self.i += 1
            self.emit(")", start)
        elif ch == "[":
            self.i += 1
            self.emit("[", start)
            self.bracket, self.colon = start, False
        elif ch == "]":
            raise self.fail("unexpected right bracket ']'", start)
        elif ch == "{":
            self.i += 1
            self.emit("{", start)
            self.braces()
        elif ch == "}":
            raise self.fail("unexpected character: '}'", start)
        elif ch in "\"'`":
            self.string(ch)
        elif ch.isdigit() or (ch == "." and nxt.isdigit()):
            self.number_or_duration(in_brackets=False)
        elif _is_ident_start(ch):
            while self.i < len(text) and _is_ident_char(text[self.i]):
                self.i += 1
            word = text[start:self.i]
            self.emit("keyword" if word.lower() in KEYWORDS else "ident", start)
        else:
            self.operator(ch, nxt, start)

    def operator(self, ch: str, nxt: str, start: int) -> None:
        two = ch + nxt
        if two in ("==", "!=", "<=", ">=", "=~", "!~"):
            if two in ("=~", "!~"):
                raise self.fail(f"unexpected character after '{ch}': '{nxt}'", start)
            self.i += 2
        elif ch in "+-*/%^<>@":
            self.i += 1
        elif ch == "=":
            raise self.fail("unexpected character after '=': " + go_rune(nxt or "\x00"), start)
        elif ch == "!":
            raise self.fail("unexpected character after '!'", start)
        elif ch == ":":
            raise self.fail("unexpected character: ':'", start)
        else:
            raise self.fail(f"unexpected character: {go_rune(ch)}", start)
        self.emit("op", start)

    def braces(self) -> None:
        text = self.text
        while True:
            self.skip_space()
            if self.i >= len(text):
                raise self.fail("unexpected end of input inside braces", self.i)
            start, ch = self.i, text[self.i]
            nxt = text[self.i + 1] if self.i + 1 < len(text) else ""
            if ch == "}":
                self.i += 1
                self.emit("}", start)
                return
            if ch == ",":
                self.i += 1
                self.emit(",", start)
            elif ch in "\"'`":
                self.string(ch)
            elif _is_label_char(ch, first=True):
                while self.i < len(text) and _is_label_char(text[self.i], first=False):
                    self.i += 1
                self.emit("ident", start)
            elif ch + nxt in ("=~", "!=", "!~"):
                self.i += 2
                self.emit("op", start)
            elif ch == "=":
                self.i += 1
                self.emit("op", start)
            elif ch == "{":
                raise self.fail("unexpected left brace '{'", start)
            else:
                raise self.fail(f"unexpected character inside braces: {go_rune(ch)}", start)

    def string(self, quote: str) -> None:
        text, start = self.text, self.i
        self.i += 1
        while True:
            if self.i >= len(text) or (quote != "`" and text[self.i] == "\n"):
                kind = "raw string" if quote == "`" else "quoted string"
                raise self.fail(f"unterminated {kind}", start)
            ch = text[self.i]
            self.i += 1
            if ch == quote:
                self.emit("string", start)
                return
            if ch == "\\" and quote != "`":
                self.escape(quote, start)

    def escape(self, quote: str, start: int) -> None:
        text = self.text
        if self.i >= len(text):
            raise self.fail("escape sequence not terminated", start)
        ch = text[self.i]
        self.i += 1
        if ch == quote or ch in _ESCAPES:
            return
        digits = {"x": (2, 16), "u": (4, 16), "U": (8, 16)}.get(ch)
        if ch in "01234567":
            digits, self.i = (3, 8), self.i - 1
        if digits is None:
            raise self.fail(f"unknown escape sequence U+{ord(ch):04X} {go_rune(ch)}", start)
        count, base = digits
        for _ in range(count):
            if self.i >= len(text):
                raise self.fail("escape sequence not terminated", start)
            c = text[self.i]
            if int(c, 36) >= base if c.isascii() and c.isalnum() else True:
                raise self.fail(f"illegal character U+{ord(c):04X} {go_rune(c)} in escape sequence",
                                start)
            self.i += 1

    def number_or_duration(self, in_brackets: bool) -> None:
        """A number (``1``, ``.5``, ``0x1f``, ``1e3``, ``Inf`` is an identifier) or, when a unit
        follows the digits, a duration (``5m``, ``1h30m``)."""
        text, start = self.text, self.i
        if text.startswith(("0x", "0X"), start):
            self.i += 2
            while self.i < len(text) and text[self.i] in "0123456789abcdefABCDEF":
                self.i += 1
            self.emit("number", start)
            return
        j = start
        while j < len(text) and text[j].isdigit():
            j += 1
        if j < len(text) and text[j] in UNITS and j > start:
            self.i = j
            while self.i < len(text) and (text[self.i].isdigit() or text[self.i] in UNITS):
                self.i += 1
            self.emit("duration", start)
            return
        if in_brackets:
            raise self.fail("missing unit character in duration", start)
        self.i = j
        if self.i < len(text) and text[self.i] == ".":
            self.i += 1
            while self.i < len(text) and text[self.i].isdigit():
                self.i += 1
        if self.i < len(text) and text[self.i] in "eE":
            self.i += 1
            if self.i < len(text) and text[self.i] in "+-":
                self.i += 1
            while self.i < len(text) and text[self.i].isdigit():
                self.i += 1
        if self.i < len(text) and _is_ident_char(text[self.i]):
            self.i += 1
            raise self.fail(f'bad number or duration syntax: "{text[start:self.i]}"', start)
        self.emit("number", start)


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text`` ending with an ``eof`` token; raises ``LexError``."""
    return _Lexer(text).run()
