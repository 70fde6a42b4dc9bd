//! Tests of the public expression API: YAQL operators and functions, Jinja,
//! interpolation, parse errors, `Data`, `referenced_tasks` and `Lookup`.

use super::*;
use serde_json::json;

/// A `Lookup` test double with one task, an execution, an env and a global.
struct FakeLookup;

impl Lookup for FakeLookup {
    fn task(&self, name: Option<&str>) -> Option<Value> {
        match name {
            None | Some("t1") => Some(json!({"name": "t1", "state": "SUCCESS", "result": [1, 2]})),
            Some(_) => None,
        }
    }
    fn execution(&self) -> Value {
        json!({"id": "ex-1", "input": {"n": 3}})
    }
    fn env(&self) -> Value {
        json!({"region": "r1"})
    }
    fn global(&self, name: &str) -> Option<Value> {
        (name == "g").then(|| json!(42))
    }
}

fn data() -> Value {
    json!({
        "i": 7,
        "s": "Hello",
        "list": [1, 2, 3, 4],
        "d": {"k": "v", "n": null},
        "users": [{"name": "a", "age": 30}, {"name": "b", "age": 20}],
        "words": ["x", "y"],
        "f": 1.5
    })
}

fn eval_with(src: &str, lookup: &dyn Lookup) -> Result<Value, ExprError> {
    let d = data();
    let ctx = Context { data: &d, lookup };
    Template::parse(src)?.evaluate(&ctx)
}

fn ev(src: &str) -> Value {
    eval_with(src, &FakeLookup).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn y(expr: &str) -> Value {
    ev(&format!("<% {expr} %>"))
}

fn y_err(expr: &str) -> ExprError {
    match eval_with(&format!("<% {expr} %>"), &FakeLookup) {
        Ok(v) => panic!("{expr} should fail, got {:.200}", v.to_string()),
        Err(e) => e,
    }
}

#[test]
fn yaql_paths_and_literals() {
    assert_eq!(y("$"), data());
    assert_eq!(y("$.i"), json!(7));
    assert_eq!(y("$.d.k"), json!("v"));
    assert_eq!(y("$.d.missing"), Value::Null);
    assert_eq!(y("$.list[0]"), json!(1));
    assert_eq!(y("$.list[-1]"), json!(4));
    assert_eq!(y("$.d['k']"), json!("v"));
    assert_eq!(y("$.d['zz']"), Value::Null);
    assert_eq!(y("$.s[1]"), json!("e"));
    assert_eq!(y("$.users.name"), json!(["a", "b"]));
    assert_eq!(y("$.d.n?.x"), Value::Null);
    assert_eq!(y("1"), json!(1));
    assert_eq!(y("-2.5"), json!(-2.5));
    assert_eq!(y("'a\\'b'"), json!("a'b"));
    assert_eq!(y("\"q\\n\""), json!("q\n"));
    assert_eq!(y("true"), json!(true));
    assert_eq!(y("null"), Value::Null);
    assert_eq!(y("[1, 'a', [2]]"), json!([1, "a", [2]]));
    assert_eq!(
        y("{a => 1, 'b' => 2, $.s => 3}"),
        json!({"a": 1, "b": 2, "Hello": 3})
    );
    assert_eq!(y("$.list[1 + 1]"), json!(3));
}

#[test]
fn yaql_path_errors() {
    assert!(y_err("$.list[10]").message.contains("out of range"));
    assert!(y_err("$.list[-5]").message.contains("out of range"));
    assert!(y_err("$.d.n.x").message.contains("attribute 'x' of null"));
    assert!(y_err("$.i.x").message.contains("of a number"));
    assert!(y_err("$.list['a']").message.contains("integer"));
}

#[test]
fn yaql_arithmetic() {
    assert_eq!(y("1 + 2 * 3"), json!(7));
    assert_eq!(y("(1 + 2) * 3"), json!(9));
    assert_eq!(y("7 / 2"), json!(3));
    assert_eq!(y("-7 / 2"), json!(-4));
    assert_eq!(y("7.0 / 2"), json!(3.5));
    assert_eq!(y("7 mod 3"), json!(1));
    assert_eq!(y("-7 mod 3"), json!(2));
    assert_eq!(y("$.i - 10"), json!(-3));
    assert_eq!(y("-$.i"), json!(-7));
    assert_eq!(y("$.f * 2"), json!(3.0));
    assert_eq!(y("'a' + 'b'"), json!("ab"));
    assert_eq!(y("$.s + '!'"), json!("Hello!"));
    assert_eq!(y("[1] + [2, 3]"), json!([1, 2, 3]));
    assert_eq!(y("{a => 1} + {b => 2}"), json!({"a": 1, "b": 2}));
    assert_eq!(y("9223372036854775807 + 1"), json!(9223372036854775808.0));
    assert!(y_err("1 / 0").message.contains("division by zero"));
    assert!(y_err("1 mod 0").message.contains("division by zero"));
    assert!(y_err("'a' + 1").message.contains("unsupported operand"));
    assert!(y_err("-'a'").message.contains("negate"));
}

#[test]
fn yaql_comparison_logic() {
    assert_eq!(y("1 = 1.0"), json!(true));
    assert_eq!(y("1 == 2"), json!(false));
    assert_eq!(y("1 != 2"), json!(true));
    assert_eq!(y("1 < 2 and 2 <= 2 and 3 > 2 and 3 >= 4"), json!(false));
    assert_eq!(y("'a' < 'b'"), json!(true));
    assert_eq!(y("$.list = [1, 2, 3, 4]"), json!(true));
    assert_eq!(y("$.d = {k => 'v', n => null}"), json!(true));
    assert_eq!(y("2 in $.list"), json!(true));
    assert_eq!(y("'k' in $.d"), json!(true));
    assert_eq!(y("'ell' in $.s"), json!(true));
    assert_eq!(y("not 1 = 2"), json!(true));
    assert_eq!(y("not $.list"), json!(false));
    // and/or return operands, like Python.
    assert_eq!(y("null or 'dflt'"), json!("dflt"));
    assert_eq!(y("$.s or 'dflt'"), json!("Hello"));
    assert_eq!(y("0 and 1/0"), json!(0));
    assert_eq!(y("1 or 1/0"), json!(1));
    assert!(y_err("1 < 'a'").message.contains("cannot compare"));
}

#[test]
fn yaql_chain_let_vars() {
    assert_eq!(y("let(x => 1, y => 2) -> $x + $y"), json!(3));
    assert_eq!(y("let(x => $.i) -> $x * 2"), json!(14));
    assert_eq!(y("let(10, 20) -> $1 + $2"), json!(30));
    assert_eq!(y("$.list -> $.len()"), json!(4));
    assert_eq!(y("$.d -> $.k"), json!("v"));
    assert_eq!(y("$undefined"), Value::Null);
    // Variables stay visible inside lambdas.
    assert_eq!(
        y("let(m => 10) -> $.list.select($ * $m)"),
        json!([10, 20, 30, 40])
    );
}

#[test]
fn yaql_collection_functions() {
    assert_eq!(y("len($.list)"), json!(4));
    assert_eq!(y("$.list.len()"), json!(4));
    assert_eq!(y("$.s.len()"), json!(5));
    assert_eq!(y("$.d.count()"), json!(2));
    assert_eq!(y("$.d.keys()"), json!(["k", "n"]));
    assert_eq!(y("$.d.values()"), json!(["v", null]));
    assert_eq!(y("$.d.items()"), json!([["k", "v"], ["n", null]]));
    assert_eq!(y("$.list.first()"), json!(1));
    assert_eq!(y("$.list.last()"), json!(4));
    assert_eq!(y("[].first(0)"), json!(0));
    assert!(y_err("[].first()").message.contains("empty"));
    assert_eq!(y("$.list.sum()"), json!(10));
    assert_eq!(y("sum([1, 2.5])"), json!(3.5));
    assert_eq!(y("$.users.sum($.age)"), json!(50));
    assert_eq!(y("$.list.min()"), json!(1));
    assert_eq!(y("$.list.max()"), json!(4));
    assert_eq!(y("max(3, 9)"), json!(9));
    assert_eq!(y("[1, 2, 1, 3, 2].distinct()"), json!([1, 2, 3]));
    assert_eq!(y("range(3)"), json!([0, 1, 2]));
    assert_eq!(y("range(2, 5)"), json!([2, 3, 4]));
    assert_eq!(y("range(5, 0, -2)"), json!([5, 3, 1]));
    assert_eq!(y("list(1, 'a')"), json!([1, "a"]));
    assert_eq!(y("$.list.list()"), json!([1, 2, 3, 4]));
    assert_eq!(y("dict(a => 1, b => $.i)"), json!({"a": 1, "b": 7}));
    assert_eq!(y("dict([['a', 1], ['b', 2]])"), json!({"a": 1, "b": 2}));
    assert_eq!(y("$.d.get('k')"), json!("v"));
    assert_eq!(y("$.d.get('zz', 'dflt')"), json!("dflt"));
    assert_eq!(y("$.list.contains(3)"), json!(true));
    assert_eq!(y("$.d.contains('zz')"), json!(false));
    assert_eq!(y("$.list.where($ > 2).select($ * 10)"), json!([30, 40]));
    assert_eq!(y("$.list.filter($ mod 2 = 0)"), json!([2, 4]));
    assert_eq!(y("$.users.where($.age > 25).select($.name)"), json!(["a"]));
    assert_eq!(y("select($.list, $ + 1)"), json!([2, 3, 4, 5]));
    assert_eq!(y("$.list.any($ > 3)"), json!(true));
    assert_eq!(y("$.list.all($ > 3)"), json!(false));
    assert_eq!(y("[0, 1].any()"), json!(true));
    assert_eq!(y("[[1, [2]], 3].flatten()"), json!([1, 2, 3]));
    assert_eq!(y("[3, 1, 2].sort()"), json!([1, 2, 3]));
    assert_eq!(y("$.users.orderBy($.age).name"), json!(["b", "a"]));
    assert_eq!(y("$.list.orderByDescending($)"), json!([4, 3, 2, 1]));
    assert!(y_err("[1, 'a'].sort()").message.contains("cannot compare"));
    assert_eq!(y("$.list.reverse()"), json!([4, 3, 2, 1]));
    assert_eq!(y("$.list.skip(1).take(2)"), json!([2, 3]));
    assert_eq!(y("[1].concat([2], [3])"), json!([1, 2, 3]));
    assert_eq!(y("concat('a', 'b', 1)"), json!("ab1"));
    assert_eq!(y("$.list.indexOf(3)"), json!(2));
    assert_eq!(y("$.list.indexOf(9)"), json!(-1));
    assert_eq!(y("set(1, 2, 1)"), json!([1, 2]));
    assert_eq!(y("[1, 1].set()"), json!([1]));
    assert_eq!(y("abs(-3)"), json!(3));
    assert!(y_err("len(1)").message.contains("no length"));
    assert!(y_err("$.i.select($)").message.contains("expected a list"));
}

#[test]
fn yaql_string_and_conversion_functions() {
    assert_eq!(y("$.words.join(', ')"), json!("x, y"));
    assert_eq!(y("', '.join($.words)"), json!("x, y"));
    assert_eq!(y("'a,b,c'.split(',')"), json!(["a", "b", "c"]));
    assert_eq!(y("'a,b,c'.split(',', 1)"), json!(["a", "b,c"]));
    assert_eq!(y("' a  b '.split()"), json!(["a", "b"]));
    assert_eq!(y("$.s.toUpper()"), json!("HELLO"));
    assert_eq!(y("toLower($.s)"), json!("hello"));
    assert_eq!(y("'  x '.trim()"), json!("x"));
    assert_eq!(y("'--x--'.trim('-')"), json!("x"));
    assert_eq!(y("'aXbX'.replace('X', '-')"), json!("a-b-"));
    assert_eq!(y("'aXbX'.replace('X', '-', 1)"), json!("a-bX"));
    assert_eq!(y("$.s.startsWith('He')"), json!(true));
    assert_eq!(y("$.s.endsWith('x')"), json!(false));
    assert_eq!(y("$.s.substring(1, 3)"), json!("ell"));
    assert_eq!(y("$.s.substring(-2)"), json!("lo"));
    assert_eq!(y("'héllo'.substring(1, 1)"), json!("é"));
    assert_eq!(y("$.s.indexOf('l')"), json!(2));
    assert_eq!(y("'{0}-{1}-{}'.format(1, 'b')"), json!("1-b-1"));
    assert_eq!(y("'{a}/{{x}}'.format(a => 5)"), json!("5/{x}"));
    assert_eq!(y("str(1)"), json!("1"));
    assert_eq!(y("str(true)"), json!("True"));
    assert_eq!(y("str(null)"), json!("None"));
    assert_eq!(y("str([1])"), json!("[1]"));
    assert_eq!(y("int('42')"), json!(42));
    assert_eq!(y("int(3.9)"), json!(3));
    assert_eq!(y("float('1.5')"), json!(1.5));
    assert_eq!(y("bool([])"), json!(false));
    assert_eq!(y("bool('x')"), json!(true));
    assert!(y_err("int('x')").message.contains("invalid integer"));
    assert_eq!(y("isString($.s)"), json!(true));
    assert_eq!(y("$.list.isList()"), json!(true));
    assert_eq!(y("$.d.isDict()"), json!(true));
    assert_eq!(y("$.f.isNumber()"), json!(true));
    assert_eq!(y("$.f.isInteger()"), json!(false));
    assert_eq!(y("true.isBoolean()"), json!(true));
    assert_eq!(y("$.d.n.isNull()"), json!(true));
    assert_eq!(
        y("''.isEmpty() and [].isEmpty() and not [1].isEmpty()"),
        json!(true)
    );
}

#[test]
fn yaql_mistral_functions() {
    assert_eq!(y("task('t1').result"), json!([1, 2]));
    assert_eq!(y("task().state"), json!("SUCCESS"));
    assert_eq!(y("task('nope')"), Value::Null);
    assert_eq!(y("execution().input.n"), json!(3));
    assert_eq!(y("env().region"), json!("r1"));
    assert_eq!(y("global('g')"), json!(42));
    assert_eq!(y("global('zz')"), Value::Null);
    assert_eq!(y("json_parse('{\"a\": [1]}')"), json!({"a": [1]}));
    assert_eq!(y("json_dump($.d)"), json!("{\"k\":\"v\",\"n\":null}"));
    assert_eq!(y("yaml_parse('a: 1')"), json!({"a": 1}));
    assert_eq!(y("yaml_dump({a => 1})"), json!("a: 1\n"));
    assert_eq!(y("uuid().len()"), json!(36));
    assert!(y_err("json_parse('{')").message.contains("invalid JSON"));
    // With NoLookup everything is empty/null.
    let d = data();
    let ctx = Context {
        data: &d,
        lookup: &NoLookup,
    };
    let t = Template::parse("<% task('t1') %>").unwrap();
    assert_eq!(t.evaluate(&ctx).unwrap(), Value::Null);
}

#[test]
fn yaql_parse_errors_have_positions() {
    let e = Template::parse("<% 1 + %>").unwrap_err();
    assert_eq!(e.expression, "1 +");
    assert_eq!(e.position, Some(3));
    let e = Template::parse("x <% $.a.frobnicate() %>").unwrap_err();
    assert!(e.message.contains("unknown function 'frobnicate'"), "{e}");
    assert_eq!(e.position, Some(4));
    let e = Template::parse("<% now() %>").unwrap_err();
    assert!(e.message.contains("unknown function 'now'"));
    let e = Template::parse("abc <% $.x").unwrap_err();
    assert!(e.message.contains("never closed"));
    assert_eq!(e.position, Some(4));
    let e = Template::parse("{{ _.x ").unwrap_err();
    assert!(e.message.contains("never closed"));
    // `%>` inside a string literal does not close the expression.
    assert_eq!(y("'a%>b'"), json!("a%>b"));
    // Rendered error text carries the position.
    let e = Template::parse("<% (1 %>").unwrap_err();
    assert_eq!(
        e.to_string(),
        "expected ')', found end of expression (in expression '(1' at position 2)"
    );
}

#[test]
fn yaql_limits() {
    let deep = format!("<% {}1{} %>", "[".repeat(500), "]".repeat(500));
    assert!(
        Template::parse(&deep)
            .unwrap_err()
            .message
            .contains("nested")
    );
    let e = y_err("range(100000000)");
    assert!(e.message.contains("budget"), "{e}");
    let e = y_err("range(2000).select(range(2000))");
    assert!(e.message.contains("budget"), "{e}");
}

#[test]
fn interpolation_vs_raw() {
    assert_eq!(ev("<% $.list %>"), json!([1, 2, 3, 4]));
    assert_eq!(ev("  <% $.list %>\n"), json!([1, 2, 3, 4]));
    assert_eq!(ev("{{ _.list }}"), json!([1, 2, 3, 4]));
    assert_eq!(ev("n=<% $.i %>"), json!("n=7"));
    assert_eq!(ev("<% $.list %> items"), json!("[1,2,3,4] items"));
    assert_eq!(
        ev("<% true %>/<% null %>/<% $.s %>"),
        json!("True/None/Hello")
    );
    assert_eq!(ev("<% $.i %><% $.i %>"), json!("77"));
    assert_eq!(ev("a <% $.i %> b {{ _.s }} c"), json!("a 7 b Hello c"));
    assert_eq!(ev("no expressions"), json!("no expressions"));
    assert_eq!(ev(""), json!(""));
    assert_eq!(ev("héllo <% 'ü' %>"), json!("héllo ü"));
    let t = Template::parse("plain").unwrap();
    assert!(!t.has_expressions());
    assert_eq!(t.source(), "plain");
    assert!(Template::parse("x <% 1 %>").unwrap().has_expressions());
}

#[test]
fn jinja_basics() {
    assert_eq!(ev("{{ _.i + 1 }}"), json!(8));
    assert_eq!(ev("{{ _.s | upper }}"), json!("HELLO"));
    assert_eq!(ev("{{ _.list | length }}"), json!(4));
    assert_eq!(ev("{{ _.d.k }}"), json!("v"));
    assert_eq!(
        ev("{{ _.users | map(attribute='name') | list }}"),
        json!(["a", "b"])
    );
    assert_eq!(
        ev("{% for x in _.list %}{{ x }},{% endfor %}"),
        json!("1,2,3,4,")
    );
    assert_eq!(
        ev("{% if _.i > 5 %}big{% else %}small{% endif %}"),
        json!("big")
    );
    assert_eq!(ev("{# note #}x"), json!("x"));
    assert_eq!(ev("{{ {'a': {'b': 1}} }}"), json!({"a": {"b": 1}}));
    assert_eq!(ev("{{ _.i }}-{{ _.s }}"), json!("7-Hello"));
    // `_` used as a whole (not just `_.key`) still sees everything.
    assert_eq!(ev("{{ _ | length }}"), json!(7));
    assert_eq!(ev("{{ _['s'] }}"), json!("Hello"));
    assert_eq!(ev("{{ _.list | json_dump }}"), json!("[1,2,3,4]"));
    assert_eq!(ev("{{ json_parse('[1]') }}"), json!([1]));
    assert_eq!(ev("{{ yaml_parse('a: 2').a }}"), json!(2));
    assert_eq!(ev("{{ uuid() | length }}"), json!(36));
}

#[test]
fn jinja_errors() {
    // Undefined is an error, not an empty string.
    let e = eval_with("{{ _.nope.x }}", &FakeLookup).unwrap_err();
    assert!(e.message.contains("undefined"), "{e}");
    let e = eval_with("{{ _.nope }}", &FakeLookup).unwrap_err();
    assert!(e.message.contains("undefined"), "{e}");
    let e = Template::parse("{{ 1 + }}").unwrap_err();
    assert!(e.message.contains("syntax error"), "{e}");
    assert!(e.position.is_some());
    let e = Template::parse("{{ frob(1) }}").unwrap_err();
    assert!(
        e.message.contains("unknown function or variable 'frob'"),
        "{e}"
    );
    assert_eq!(e.position, Some(0));
    let e = Template::parse("{% for x in _.l %}{{ y }}{% endfor %}").unwrap_err();
    assert!(e.message.contains("'y'"), "{e}");
    assert!(Template::parse("{% if %}").is_err());
    let e = Template::parse("{{ _.s | shout }}").unwrap_err();
    assert_eq!(e.message, "unknown filter 'shout'");
    assert_eq!(e.position, Some(6));
    let e = Template::parse("{% for x in _.l %}{{ x | shout }}{% endfor %}").unwrap_err();
    assert_eq!(e.position, Some(25));
    // Loop variables and `set` are not "unknown".
    assert_eq!(
        ev("{% set n = 2 %}{% for x in _.list %}{{ x * n }}{{ loop.index }};{% endfor %}"),
        json!("21;42;63;84;")
    );
    // Fuel bounds runaway loops.
    let e = eval_with(
        "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
        &FakeLookup,
    )
    .unwrap_err();
    assert!(e.message.to_lowercase().contains("fuel"), "{e}");
}

#[test]
fn jinja_lookup_functions() {
    assert_eq!(ev("{{ task('t1').result }}"), json!([1, 2]));
    assert_eq!(ev("{{ task().state }}"), json!("SUCCESS"));
    assert_eq!(ev("{{ task('nope') }}"), Value::Null);
    assert_eq!(ev("{{ task(_.words[0]) }}"), Value::Null);
    assert_eq!(ev("{{ execution().input.n }}"), json!(3));
    assert_eq!(ev("{{ env().region }}"), json!("r1"));
    assert_eq!(ev("{{ global('g') }}"), json!(42));
    assert_eq!(
        ev("{% if task('t1') %}{{ global('g') }} {{ env().region }}{% endif %}"),
        json!("42 r1")
    );
}

#[test]
fn data_compile_and_evaluate() {
    let spec = json!({
        "lit": {"a": [1, 2, {"b": "x"}]},
        "expr": "<% $.i %>",
        "list": ["<% $.s %>", 3, "{{ _.i * 2 }}"],
        "<% $.s %>": "key was templated",
        "nested": {"deep": ["text <% $.i %>"]}
    });
    let d = Data::compile(&spec).unwrap();
    let Data::Map(pairs) = &d else {
        panic!("expected a map, got {d:?}")
    };
    assert!(matches!(pairs[0].1, Data::Literal(_)));
    let v = data();
    let ctx = Context {
        data: &v,
        lookup: &FakeLookup,
    };
    assert_eq!(
        d.evaluate(&ctx).unwrap(),
        json!({
            "lit": {"a": [1, 2, {"b": "x"}]},
            "expr": 7,
            "list": ["Hello", 3, 14],
            "Hello": "key was templated",
            "nested": {"deep": ["text 7"]}
        })
    );
    let lit = Data::compile(&json!({"a": [1, "b"]})).unwrap();
    assert!(matches!(lit, Data::Literal(_)));
    let e = Data::compile(&json!({"a": ["<% 1 + %>"]})).unwrap_err();
    assert_eq!(e.position, Some(3));
    let e = Data::compile(&json!({"<% nope() %>": 1})).unwrap_err();
    assert!(e.message.contains("unknown function"));
}

#[test]
fn referenced_tasks_found() {
    let t = Template::parse("<% task('a').result %> {{ task(\"b\").x }} <% task($.x) %>").unwrap();
    assert_eq!(t.referenced_tasks(), vec!["a", "b"]);
    let d = Data::compile(&json!({"x": ["<% task('c') %>", {"y": "{{ task('a') }}"}], "z": 1}))
        .unwrap();
    assert_eq!(d.referenced_tasks(), vec!["c", "a"]);
    assert!(
        Data::compile(&json!("plain"))
            .unwrap()
            .referenced_tasks()
            .is_empty()
    );
}

#[test]
fn is_truthy_cases() {
    for v in [
        json!(null),
        json!(false),
        json!(0),
        json!(0.0),
        json!(""),
        json!([]),
        json!({}),
    ] {
        assert!(!is_truthy(&v), "{v}");
    }
    for v in [
        json!(true),
        json!(1),
        json!("a"),
        json!([0]),
        json!({"a": 0}),
    ] {
        assert!(is_truthy(&v), "{v}");
    }
}

#[test]
fn shareable_across_threads() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
    check::<Template>();
    check::<Data>();
    let t = Template::parse("<% $.i %> {{ _.i }}").unwrap();
    let h = std::thread::spawn(move || {
        let v = json!({"i": 1});
        t.evaluate(&Context {
            data: &v,
            lookup: &NoLookup,
        })
        .unwrap()
    });
    assert_eq!(h.join().unwrap(), json!("1 1"));
}

#[test]
fn no_panics_on_odd_input() {
    let inputs = [
        "<%%>",
        "<% %>",
        "{{}}",
        "{{ }}",
        "<% $.[ %>",
        "<% 'é %>",
        "<% $. %>",
        "<% 1.e5 %>",
        "<% 99999999999999999999999 %>",
        "<% 1e999 %>",
        "<% {a => } %>",
        "<% f( %>",
        "<% )( %>",
        "<% $$ %>",
        "<% \\u %>",
        "<% '\\u12' %>",
        "{{ '}}' }}",
        "<% a => 1 %>",
        "{%",
        "{#",
        "<% -",
        "<% 'x'.substring(-99999999999, 99999999999) %>",
        "<% range(-9223372036854775808, 9223372036854775807, 9223372036854775807) %>",
        "<% -9223372036854775807 - 1 %>",
        "<% (-9223372036854775807 - 1) / -1 %>",
        "<% (-9223372036854775807 - 1) mod -1 %>",
        "<% abs(-9223372036854775807 - 1) %>",
        "<% 'ab'[-3] %>",
        "<% split('a', 'a', -5) %>",
    ];
    let d = data();
    let ctx = Context {
        data: &d,
        lookup: &FakeLookup,
    };
    for i in inputs {
        if let Ok(t) = Template::parse(i) {
            let _ = t.evaluate(&ctx);
        }
    }
    let deep = format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000));
    assert!(Template::parse(&deep).is_err());
    // The empty YAQL expression is a syntax error.
    assert!(Template::parse("<% %>").is_err());
}

/// Random token soup through parse and evaluate: nothing may panic (a
/// fixed seed, under a second; `scripts/fuzz.sh` runs the real fuzzers).
#[test]
fn fuzz_smoke() {
    const PIECES: &[&str] = &[
        "<%",
        "%>",
        "{{",
        "}}",
        "{%",
        "%}",
        "$",
        ".",
        "$.list",
        "$.d",
        "[",
        "]",
        "(",
        ")",
        "{",
        "}",
        ",",
        "=>",
        "->",
        "+",
        "-",
        "*",
        "/",
        " mod ",
        "=",
        "!=",
        "<",
        ">=",
        " and ",
        " or ",
        " not ",
        " in ",
        "'a'",
        "\"é\"",
        "1",
        "-1",
        "2.5",
        "0",
        "len(",
        "select(",
        "where(",
        "join(",
        "let(",
        "x",
        "$x",
        "range(",
        "format(",
        "substring(",
        "task(",
        "_",
        "_.list",
        "|",
        " upper",
        " for ",
        " if ",
        "ü",
        "\\",
        "'",
        "?.",
        "true",
        "null",
        "dict(",
        "sort(",
        "flatten(",
    ];
    let d = data();
    let ctx = Context {
        data: &d,
        lookup: &FakeLookup,
    };
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..200_000 {
        let n = (next() % 12) as usize + 1;
        let mut s = String::new();
        for _ in 0..n {
            s.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
        }
        if let Ok(t) = Template::parse(&s) {
            let _ = t.evaluate(&ctx);
        }
        let y = format!("<% {s} %>");
        if let Ok(t) = Template::parse(&y) {
            let _ = t.evaluate(&ctx);
        }
    }
}
