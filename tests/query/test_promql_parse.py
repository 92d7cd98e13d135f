"""The PromQL parser front: what Prometheus 2.42 accepts, and its exact words when it refuses.

The refusals are Appendix B of docs/design/prometheus.md: each query was sent to a real
Prometheus 2.42 (``POST /api/v1/query``) and its answer after ``invalid parameter "query": ``
recorded; the parser must give the same string, position included.
"""

from __future__ import annotations

import time

import pytest

from otel_hms.query.promql import nodes
from otel_hms.query.promql.parse import MAX_NESTING, MAX_OPERATORS, ParseError, parse

# (query, Prometheus 2.42's error, or None where it answers 200)
PROMETHEUS_2_42 = [
    ('foo{a="b"', '1:10: parse error: unexpected end of input inside braces'),
    ('sum(foo', '1:8: parse error: unclosed left parenthesis'),
    ('foo +', '1:6: parse error: unexpected end of input'),
    ('foo bar', '1:5: parse error: unexpected identifier "bar"'),
    ('sum(foo) by', '1:12: parse error: unexpected end of input in grouping opts, expected "("'),
    ('rate(foo[5m)', '1:12: parse error: unexpected ")" in subquery or range, expected ":" or "]"'),
    ('foo[5m', '1:7: parse error: unclosed left bracket'),
    ('foo[5m]]', "1:8: parse error: unexpected right bracket ']'"),
    ('foo)', "1:5: parse error: unexpected right parenthesis ')'"),
    ('(foo', '1:5: parse error: unclosed left parenthesis'),
    ('{', '1:2: parse error: unexpected end of input inside braces'),
    ('}', "1:1: parse error: unexpected character: '}'"),
    ('foo{a=}', '1:7: parse error: unexpected "}" in label matching, expected string'),
    ('foo{a="b",,}',
     '1:11: parse error: unexpected "," in label matching, expected identifier or "}"'),
    ('foo{=~"a"}',
     '1:5: parse error: unexpected <op:=~> in label matching, expected identifier or "}"'),
    ('foo{a=~"("}', '1:5: parse error: error parsing regexp: missing closing ): `^(?:()$`'),
    ('foo[5m] + 1',
     '1:1: parse error: binary expression must contain only scalar and instant vector types'),
    ('1 + foo[5m]',
     '1:5: parse error: binary expression must contain only scalar and instant vector types'),
    ('"a" + 1',
     '1:1: parse error: binary expression must contain only scalar and instant vector types'),
    ('rate(foo)',
     '1:6: parse error: expected type range vector in call to function "rate", got instant vector'),
    ('rate(foo[5m], 1)', '1:1: parse error: expected 1 argument(s) in call to "rate", got 2'),
    ('abs(foo, bar)', '1:1: parse error: expected 1 argument(s) in call to "abs", got 2'),
    ('abs()', '1:1: parse error: expected 1 argument(s) in call to "abs", got 0'),
    ('time(1)', '1:1: parse error: expected 0 argument(s) in call to "time", got 1'),
    ('vector("a")',
     '1:8: parse error: expected type scalar in call to function "vector", got string'),
    ('topk(foo, bar)',
     '1:6: parse error: expected type scalar in aggregation parameter, got instant vector'),
    ('count_values(1, foo)',
     '1:14: parse error: expected type string in aggregation parameter, got scalar'),
    ('quantile("a", foo)',
     '1:10: parse error: expected type scalar in aggregation parameter, got string'),
    ('sum(foo, bar)',
     '1:1: parse error: wrong number of arguments for aggregate expression provided,'
     ' expected 1, got 2'),
    ('foo{__name__="bar"}', '1:1: parse error: metric name must not be set twice: "foo" or "bar"'),
    ('{job=""}', '1:1: parse error: vector selector must contain at least one non-empty matcher'),
    ('{__name__=~".*"}',
     '1:1: parse error: vector selector must contain at least one non-empty matcher'),
    ('a and 1', '1:1: parse error: set operator "and" not allowed in binary scalar expression'),
    ('1 and 1', '1:1: parse error: set operator "and" not allowed in binary scalar expression'),
    ('a * on(x) group_left(x) b',
     '1:3: parse error: label "x" must not occur in ON and GROUP clause at once'),
    ('a and on(x) group_left b', '1:1: parse error: no grouping allowed for "and" operation'),
    ('a + bool b', '1:3: parse error: bool modifier can only be used on comparison operators'),
    ('a == bool', '1:10: parse error: unexpected end of input'),
    ('1 > 2', '1:3: parse error: comparisons between scalars must use BOOL modifier'),
    ('foo @ 1 @ 2', '1:1: parse error: @ <timestamp> may not be set multiple times'),
    ('foo offset 1m offset 2m', '1:1: parse error: offset may not be set multiple times'),
    ('sum(rate(foo[5m])) by (a) offset 1m',
     '1:1: parse error: offset modifier must be preceded by an instant vector'
     ' selector or range vector selector or a subquery'),
    ('({a="b"})[5m]', '1:10: parse error: ranges only allowed for vector selectors'),
    ('foo[5m][1m:]',
     '1:1: parse error: subquery is only allowed on instant vector, got matrix instead'),
    ('foo[5m:1m:1m]', "1:10: parse error: unexpected colon ':'"),
    ('foo[0s]', '1:5: parse error: duration must be greater than 0'),
    ('foo[5]', '1:5: parse error: missing unit character in duration'),
    ('foo offset 5', '1:12: parse error: unexpected number "5" in offset, expected duration'),
    ('foo[5m:0s]', '1:8: parse error: duration must be greater than 0'),
    ('foo @ NaN', '1:1: parse error: timestamp out of bounds for @ modifier: NaN'),
    ('foo @ Inf', '1:1: parse error: timestamp out of bounds for @ modifier: +Inf'),
    ('x{a="\\x"}', '1:5: parse error: illegal character U+0022 \'"\' in escape sequence'),
    ('sum(foo,)', '1:8: parse error: trailing commas not allowed in function call args'),
    ('nosuchfunc(foo)', '1:1: parse error: unknown function with name "nosuchfunc"'),
    ('info(foo)', '1:1: parse error: unknown function with name "info"'),
    ('limitk(1, foo)', '1:1: parse error: unknown function with name "limitk"'),
    ('foo{a="b" or c="d"}',
     '1:11: parse error: unexpected identifier "or" in label matching, expected "," or "}"'),
    ('a + fill(0) b', '1:5: parse error: unknown function with name "fill"'),
    ('1 +', '1:4: parse error: unexpected end of input'),
    ('-', '1:2: parse error: unexpected end of input'),
    ('"unterminated', '1:1: parse error: unterminated quoted string'),
    ("'x", '1:1: parse error: unterminated quoted string'),
    ('`raw', '1:1: parse error: unterminated raw string'),
    ('foo # comment', None),
    ('0x',
     '1:1: parse error: error parsing number: strconv.ParseFloat: parsing "0x": invalid syntax'),
    ('1e',
     '1:1: parse error: error parsing number: strconv.ParseFloat: parsing "1e": invalid syntax'),
    ('1.2.3', '1:4: parse error: unexpected number ".3"'),
    ('foo{a="b"} == on(', '1:18: parse error: unclosed left parenthesis'),
    ('sum by (a b) (x)',
     '1:11: parse error: unexpected identifier "b" in grouping opts, expected "," or ")"'),
    ('sum by (a,) (x)', None),
    ('label_replace(up,"a","$1","b")',
     '1:1: parse error: expected 5 argument(s) in call to "label_replace", got 4'),
    ('histogram_quantile(0.9)',
     '1:1: parse error: expected 2 argument(s) in call to "histogram_quantile", got 1'),
    ('foo[1h:5m] offset',
     '1:18: parse error: unexpected end of input in offset, expected duration'),
    ('foo @', '1:6: parse error: unexpected end of input in @, expected timestamp'),
    ('foo @ start', '1:12: parse error: unexpected end of input in @, expected timestamp'),
    ('x[5m] offset -', '1:15: parse error: unexpected end of input in offset, expected duration'),
    ('max_over_time(foo[5m:1m]', '1:25: parse error: unclosed left parenthesis'),
    ('((foo)', '1:7: parse error: unclosed left parenthesis'),
    ('foo{a!~}', '1:8: parse error: unexpected "}" in label matching, expected string'),
    ('ab$c', "1:3: parse error: unexpected character: '$'"),
    ('foo.bar', "1:4: parse error: unexpected character: '.'"),
    ('foo{a.b="c"}', "1:6: parse error: unexpected character inside braces: '.'"),
    ('sum without(a) by (b) (x)', '1:16: parse error: unexpected <by> in aggregation'),
]


@pytest.mark.parametrize(("query", "expected"), PROMETHEUS_2_42)
def test_errors_are_worded_and_placed_as_prometheus_2_42(query: str, expected: str | None) -> None:
    if expected is None:
        parse(query)
        return
    with pytest.raises(ParseError) as caught:
        parse(query)
    assert str(caught.value) == expected


VALID = [
    "1",
    "1 + 1",
    "-1 ^ 2",
    "+foo",
    "- - foo",
    "foo",
    "foo{}",
    "{__name__=\"foo\"}",
    'foo{a="\\n\\"x"}',
    "foo{a=\"b\",}",
    "foo:bar_baz{job=\"x\"}",
    "foo offset 5m",
    "foo offset -5m",
    "foo @ 100",
    "foo @ -100",
    "foo @ 1.5",
    "foo @ start()",
    "foo @ end()",
    "foo offset 1m @ 100",
    "foo @ 100 offset 1m",
    "foo[5m]",
    "foo[5m] offset 1m",
    "foo[1h30m]",
    "rate(foo[5m])",
    "rate(foo{a=\"b\"}[5m] offset 1m)",
    "sum(rate(foo[5m]))",
    "sum by (job) (rate(foo[5m]))",
    "sum(rate(foo[5m])) by (job)",
    "sum without (job) (foo)",
    "sum without () (foo)",
    "topk(3, foo)",
    "topk by (a) (3, foo)",
    "quantile(0.9, foo)",
    "count_values(\"v\", foo)",
    "histogram_quantile(0.99, sum by (le, route) (rate(x_bucket[5m])))",
    "foo and bar",
    "foo or bar",
    "foo unless bar",
    "foo and on(a) bar",
    "foo * on(a) group_left(b) bar",
    "foo * on(a) group_left bar",
    "foo / ignoring(a) group_right(c) bar",
    "foo > bool 1",
    "1 == bool 1",
    "foo == 1",
    "2 atan2 1",
    "max_over_time(rate(c[1m])[5m:30s])",
    "max_over_time(rate(c[1m])[5m:])",
    "rate(foo[5m])[30m:1m] offset 1m @ 100",
    "vector(1)",
    "vector(time())",
    "time()",
    "pi()",
    "scalar(foo)",
    "label_replace(up, \"a\", \"$1\", \"b\", \"(.*)\")",
    "label_join(up, \"a\", \",\", \"b\", \"c\")",
    "round(foo)",
    "round(foo, 0.1)",
    "holt_winters(foo[5m], 0.5, 0.5)",
    "absent(nonexistent{job=\"a\"})",
    "day_of_week()",
    "sort_desc(foo)",
    "foo # comment",
    "0x1f",
    "1e3",
    ".5",
    "Inf",
    "NaN",
    "-Inf",
    "\"string\"",
    "'single'",
    "`raw\\\\string`",
    "(foo)",
    "((1))",
    "sum(foo) by (a,)",
    r'foo{a="\n\"x"}',
    "foo[5m:1m]",
    "foo{job=~\"a(b|c)\"}",
    "up == 0",
    "foo  +  on ( a )  bar",
    "count by (a) (foo) > 1",
    "-foo + -bar",
    "foo - -1",
    "1 - 1",
    "sum(foo) - sum(bar)",
    "rate(foo[5m]) * 60",
    "group(foo)",
    "stddev by (x) (foo)",
    "bottomk(2, foo)",
    "absent_over_time(foo[5m])",
    "timestamp(foo)",
    "a/b",
    "a-1",
    "a%2",
    "a^2",
    "a!=b",
    "a<=b",
    "a>=b",
]


@pytest.mark.parametrize("query", VALID)
def test_valid_queries_parse(query: str) -> None:
    parse(query)


def test_tree_is_our_own_frozen_dataclasses() -> None:
    tree = parse('sum by (job) (rate(foo{a=~"x|y",b!=""}[5m] offset -1m @ 100.5)) '
                 "/ on(job) group_left(team) bar")
    selector = nodes.VectorSelector(
        "foo", (nodes.Matcher("__name__", "=", "foo"), nodes.Matcher("a", "=~", "x|y"),
                nodes.Matcher("b", "!=", "")), -60_000, nodes.At("at", 100_500))
    assert tree == nodes.BinaryExpr(
        "/",
        nodes.AggregateExpr("sum", nodes.Call("rate", (nodes.MatrixSelector(selector, 300_000),),
                                              "vector"), None, ("job",), False),
        nodes.VectorSelector("bar", (nodes.Matcher("__name__", "=", "bar"),)),
        False, nodes.VectorMatching("many-to-one", True, ("job",), ("team",)))
    assert tree.type == "vector"
    with pytest.raises(AttributeError):
        tree.op = "*"  # type: ignore[misc]


def test_node_types() -> None:
    assert parse("1 + 2").type == "scalar"
    assert parse('"a"').type == "string"
    assert parse("foo[5m]").type == "matrix"
    assert parse("rate(foo[5m])[30m:]").type == "matrix"
    assert parse("vector(1) + 1").type == "vector"
    assert parse("-(time())").type == "scalar"
    assert parse("foo[1h:]") == nodes.SubqueryExpr(
        nodes.VectorSelector("foo", (nodes.Matcher("__name__", "=", "foo"),)), 3_600_000, None)


def test_at_timestamps_do_not_crash_and_match_prometheus() -> None:
    """promql-parser panics (a BaseException) reading a negative ``@``; 2.42 accepts it."""
    assert parse("foo @ -100") == nodes.VectorSelector(
        "foo", (nodes.Matcher("__name__", "=", "foo"),), 0, nodes.At("at", -100_000))
    assert parse("rate(foo[5m] @ -1.5)").args[0].selector.at == nodes.At("at", -1_500)  # type: ignore[union-attr]
    assert parse("foo @ start()").at == nodes.At("start")  # type: ignore[union-attr]
    assert parse("a @ 1 + b @ -2").rhs.at == nodes.At("at", -2_000)  # type: ignore[union-attr]
    assert parse("(a @ 1)[5m:] @ 2") == nodes.SubqueryExpr(
        nodes.ParenExpr(nodes.VectorSelector("a", (nodes.Matcher("__name__", "=", "a"),), 0,
                                             nodes.At("at", 1_000))), 300_000, None, 0,
        nodes.At("at", 2_000))
    parse("foo @ 9223372036854775")  # 2.42 accepts these (its ms overflow silently)
    with pytest.raises(ParseError) as caught:
        parse("foo @ 1e20")
    assert str(caught.value) == ("1:1: parse error: timestamp out of bounds for @ modifier: "
                                 "100000000000000000000.000000")


def test_raw_strings_keep_backslashes() -> None:
    """promql-parser 0.12 decodes escapes inside backquotes; Prometheus does not."""
    assert parse(r'foo{a=~`\d+"`}').matchers[1] == nodes.Matcher("a", "=~", '\\d+"')  # type: ignore[union-attr]
    assert parse("`a\\d\nb`") == nodes.StringLiteral("a\\d\nb")
    with pytest.raises(ParseError) as caught:
        parse(r'"a\d"')
    assert str(caught.value) == "1:1: parse error: unknown escape sequence U+0064 'd'"


def test_regexes_are_checked_as_go_checks_them() -> None:
    with pytest.raises(ParseError) as caught:
        parse('up{job=~"(?<n>a)"}')  # newer RE2 and Rust accept it; Go 1.19 does not
    assert str(caught.value) == ("1:4: parse error: error parsing regexp: invalid or unsupported "
                                 "Perl syntax: `(?<`")
    with pytest.raises(ParseError) as caught:
        parse('up{job="a", x!~"[z-a]"}')
    assert str(caught.value) == ("1:13: parse error: error parsing regexp: invalid character "
                                 "class range: `z-a`")


def test_no_expression() -> None:
    for query in ("", "  ", "# only a comment"):
        with pytest.raises(ParseError) as caught:
            parse(query)
        assert str(caught.value) == "1:1: parse error: no expression found in input"


def test_positions_count_lines_and_bytes() -> None:
    with pytest.raises(ParseError) as caught:
        parse('sum(\n  foo{a="é"} bar)')
    assert str(caught.value) == '2:15: parse error: unexpected identifier "bar"'


@pytest.mark.parametrize(("query", "expected"), [
    ("(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1),
     f"query too complex: brackets nested {MAX_NESTING + 1} deep, the limit is {MAX_NESTING}"),
    ("+".join(["a"] * (MAX_OPERATORS + 2)),
     f"query too complex: {MAX_OPERATORS + 1} operators and commas, the limit is {MAX_OPERATORS}"),
    ("a" * (64 * 1024 + 1), "query too complex: 65537 bytes, the limit is 65536"),
])
def test_the_guard_refuses_what_would_stall_the_parser(query: str, expected: str) -> None:
    """The parser holds the GIL and is quadratic: 8,000 nested parentheses take it 22 s."""
    started = time.perf_counter()
    with pytest.raises(ParseError) as caught:
        parse(query)
    assert time.perf_counter() - started < 0.05
    assert str(caught.value) == expected


def test_the_limits_themselves_parse() -> None:
    parse("(" * MAX_NESTING + "1" + ")" * MAX_NESTING)
    parse("+".join(["a"] * (MAX_OPERATORS + 1)))
    parse('foo{a=~"' + "|".join(f"v{i}" for i in range(3000)) + '"}')  # strings do not count
