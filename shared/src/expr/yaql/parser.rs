//! YAQL Pratt parser: tokens to [`Expr`]. Function and method names are
//! resolved against the builtin table here, so an unknown function or a
//! wrong argument count is a parse-time error with a position.

use super::YaqlError;
use super::functions::{self, Func};
use super::lexer::{Tok, Token, tokenize};
use serde_json::Value;

/// Deepest nesting the parser accepts; evaluation recursion follows the
/// tree, so this also bounds the evaluator's stack use.
pub const MAX_DEPTH: usize = 128;

/// Binary operators with plain (non short-circuit) semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    In,
}

/// A parsed YAQL expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// `$`: the current context value.
    This,
    /// `$name`: a variable from `let` (or `$1`.. for positional `let` args).
    Var(String),
    Lit(Value),
    List(Vec<Expr>),
    Dict(Vec<(Expr, Expr)>),
    /// `base.name` (or `base?.name` when `safe`).
    Attr {
        base: Box<Expr>,
        name: String,
        safe: bool,
        pos: usize,
    },
    Index {
        base: Box<Expr>,
        index: Box<Expr>,
        pos: usize,
    },
    Call(Box<Call>),
    Neg(Box<Expr>, usize),
    Not(Box<Expr>),
    Bin {
        op: BinOp,
        left: Box<Expr>,
        right: Box<Expr>,
        pos: usize,
    },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// `left -> right`: evaluate `right` with `$` bound to `left`'s value.
    Chain(Box<Expr>, Box<Expr>),
}

/// A function or method call, already resolved to a builtin. For a method
/// call `x.f(y)` the receiver is `args[0]`, exactly as in `f(x, y)`.
#[derive(Debug, Clone)]
pub struct Call {
    pub func: &'static Func,
    pub args: Vec<Expr>,
    /// `key => value` arguments, in order.
    pub named: Vec<(Expr, Expr)>,
    /// True for `x.f()` syntax; only `list` distinguishes the two forms.
    pub method: bool,
    pub pos: usize,
}

/// Parse a whole YAQL expression.
pub fn parse(src: &str) -> Result<Expr, YaqlError> {
    let tokens = tokenize(src)?;
    let mut p = Parser {
        tokens,
        i: 0,
        depth: 0,
    };
    let (e, _) = p.expr(0)?;
    let t = p.peek();
    if t.tok != Tok::Eof {
        return Err(YaqlError::new(
            format!("unexpected {} after expression", describe(&t.tok)),
            t.pos,
        ));
    }
    Ok(e)
}

struct Parser {
    tokens: Vec<Token>,
    i: usize,
    depth: usize,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Int(n) => format!("number {n}"),
        Tok::Float(f) => format!("number {f}"),
        Tok::Str(s) => format!("string '{s}'"),
        Tok::Ident(s) => format!("'{s}'"),
        Tok::Var(s) => format!("'${s}'"),
        Tok::Op(o) => format!("'{o}'"),
        Tok::Eof => "end of expression".to_string(),
    }
}

/// Infix binding powers (left, right); higher binds tighter.
fn infix(t: &Tok) -> Option<(u8, u8)> {
    Some(match t {
        Tok::Op("->") => (1, 2),
        Tok::Ident(s) if s == "or" => (3, 4),
        Tok::Ident(s) if s == "and" => (5, 6),
        Tok::Op("=" | "==" | "!=" | "<" | ">" | "<=" | ">=") => (9, 10),
        Tok::Ident(s) if s == "in" => (9, 10),
        Tok::Op("+" | "-") => (11, 12),
        Tok::Op("*" | "/") => (13, 14),
        Tok::Ident(s) if s == "mod" => (13, 14),
        _ => return None,
    })
}

// `not` binds looser than comparisons: `not $a = 1` is `not ($a = 1)`.
const NOT_BP: u8 = 7;
const UNARY_BP: u8 = 15;

impl Parser {
    fn peek(&self) -> &Token {
        // The token list always ends with Eof and `i` never passes it.
        &self.tokens[self.i.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, k: usize) -> &Tok {
        &self.tokens[(self.i + k).min(self.tokens.len() - 1)].tok
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.tokens.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn expect(&mut self, op: &'static str) -> Result<usize, YaqlError> {
        let t = self.next();
        if t.tok == Tok::Op(op) {
            Ok(t.pos)
        } else {
            Err(YaqlError::new(
                format!("expected '{op}', found {}", describe(&t.tok)),
                t.pos,
            ))
        }
    }

    /// Parse an expression; also returns the height of its tree, which is
    /// capped at [`MAX_DEPTH`] because left-associative chains (`a.b.c...`,
    /// `1+1+1...`) grow the tree without recursing in the parser.
    fn expr(&mut self, min_bp: u8) -> Result<(Expr, usize), YaqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(YaqlError::new(
                format!("expression nested deeper than {MAX_DEPTH} levels"),
                self.peek().pos,
            ));
        }
        let r = self.expr_inner(min_bp);
        self.depth -= 1;
        r
    }

    fn expr_inner(&mut self, min_bp: u8) -> Result<(Expr, usize), YaqlError> {
        let (mut left, mut height) = self.prefix()?;
        loop {
            if height > MAX_DEPTH {
                return Err(YaqlError::new(
                    format!("expression nested deeper than {MAX_DEPTH} levels"),
                    self.peek().pos,
                ));
            }
            let t = self.peek().clone();
            // Postfix: attribute access, method calls, indexing.
            match &t.tok {
                Tok::Op(op @ ("." | "?.")) => {
                    self.next();
                    let name_tok = self.next();
                    let Tok::Ident(name) = name_tok.tok else {
                        return Err(YaqlError::new(
                            format!(
                                "expected a name after '{op}', found {}",
                                describe(&name_tok.tok)
                            ),
                            name_tok.pos,
                        ));
                    };
                    if self.peek().tok == Tok::Op("(") {
                        (left, height) = self.call(&name, name_tok.pos, Some((left, height)))?;
                    } else {
                        height += 1;
                        left = Expr::Attr {
                            base: Box::new(left),
                            name,
                            safe: *op == "?.",
                            pos: name_tok.pos,
                        };
                    }
                    continue;
                }
                Tok::Op("[") => {
                    self.next();
                    let (index, h) = self.expr(0)?;
                    height = height.max(h) + 1;
                    self.expect("]")?;
                    left = Expr::Index {
                        base: Box::new(left),
                        index: Box::new(index),
                        pos: t.pos,
                    };
                    continue;
                }
                _ => {}
            }
            let Some((lbp, rbp)) = infix(&t.tok) else {
                break;
            };
            if lbp < min_bp {
                break;
            }
            self.next();
            let (right, h) = self.expr(rbp)?;
            height = height.max(h) + 1;
            let (l, r) = (Box::new(left), Box::new(right));
            left = match &t.tok {
                Tok::Op("->") => Expr::Chain(l, r),
                Tok::Ident(s) if s == "or" => Expr::Or(l, r),
                Tok::Ident(s) if s == "and" => Expr::And(l, r),
                tok => {
                    let op = match tok {
                        Tok::Op("+") => BinOp::Add,
                        Tok::Op("-") => BinOp::Sub,
                        Tok::Op("*") => BinOp::Mul,
                        Tok::Op("/") => BinOp::Div,
                        Tok::Op("=" | "==") => BinOp::Eq,
                        Tok::Op("!=") => BinOp::Ne,
                        Tok::Op("<") => BinOp::Lt,
                        Tok::Op(">") => BinOp::Gt,
                        Tok::Op("<=") => BinOp::Le,
                        Tok::Op(">=") => BinOp::Ge,
                        Tok::Ident(s) if s == "in" => BinOp::In,
                        _ => BinOp::Mod,
                    };
                    Expr::Bin {
                        op,
                        left: l,
                        right: r,
                        pos: t.pos,
                    }
                }
            };
        }
        Ok((left, height))
    }

    fn prefix(&mut self) -> Result<(Expr, usize), YaqlError> {
        let t = self.next();
        let mut height = 1;
        let e = match t.tok {
            Tok::Int(n) => Expr::Lit(Value::from(n)),
            Tok::Float(f) => Expr::Lit(Value::from(f)),
            Tok::Str(s) => Expr::Lit(Value::String(s)),
            Tok::Var(name) if name.is_empty() => Expr::This,
            Tok::Var(name) => Expr::Var(name),
            Tok::Op("-") => {
                let (e, h) = self.expr(UNARY_BP)?;
                height = h + 1;
                Expr::Neg(Box::new(e), t.pos)
            }
            Tok::Op("+") => {
                let (e, h) = self.expr(UNARY_BP)?;
                height = h;
                e
            }
            Tok::Op("(") => {
                let (e, h) = self.expr(0)?;
                height = h;
                self.expect(")")?;
                e
            }
            Tok::Op("[") => {
                let mut items = Vec::new();
                if self.peek().tok != Tok::Op("]") {
                    loop {
                        let (e, h) = self.expr(0)?;
                        height = height.max(h + 1);
                        items.push(e);
                        if self.peek().tok == Tok::Op(",") {
                            self.next();
                            continue;
                        }
                        break;
                    }
                }
                self.expect("]")?;
                Expr::List(items)
            }
            Tok::Op("{") => {
                let mut pairs = Vec::new();
                if self.peek().tok != Tok::Op("}") {
                    loop {
                        let (key, kh) = self.key()?;
                        self.expect("=>")?;
                        let (value, vh) = self.expr(0)?;
                        height = height.max(kh.max(vh) + 1);
                        pairs.push((key, value));
                        if self.peek().tok == Tok::Op(",") {
                            self.next();
                            continue;
                        }
                        break;
                    }
                }
                self.expect("}")?;
                Expr::Dict(pairs)
            }
            Tok::Ident(name) => match name.as_str() {
                "true" => Expr::Lit(Value::Bool(true)),
                "false" => Expr::Lit(Value::Bool(false)),
                "null" => Expr::Lit(Value::Null),
                "not" => {
                    let (e, h) = self.expr(NOT_BP)?;
                    height = h + 1;
                    Expr::Not(Box::new(e))
                }
                _ if self.peek().tok == Tok::Op("(") => {
                    let (e, h) = self.call(&name, t.pos, None)?;
                    height = h;
                    e
                }
                // YAQL's keyword strings: a bare word is its own text, which
                // is what makes Mistral's `task(task1)` work.
                _ => Expr::Lit(Value::String(name)),
            },
            tok => {
                return Err(YaqlError::new(
                    format!("unexpected {}", describe(&tok)),
                    t.pos,
                ));
            }
        };
        Ok((e, height))
    }

    /// A dict key or keyword-argument name: a bare identifier before `=>`
    /// is a string, anything else is an expression.
    fn key(&mut self) -> Result<(Expr, usize), YaqlError> {
        if let Tok::Ident(name) = self.peek_at(0).clone()
            && *self.peek_at(1) == Tok::Op("=>")
        {
            self.next();
            return Ok((Expr::Lit(Value::String(name)), 1));
        }
        self.expr(0)
    }

    fn call(
        &mut self,
        name: &str,
        pos: usize,
        receiver: Option<(Expr, usize)>,
    ) -> Result<(Expr, usize), YaqlError> {
        self.expect("(")?;
        let method = receiver.is_some();
        let mut height = receiver.as_ref().map_or(0, |r| r.1) + 1;
        let mut args: Vec<Expr> = receiver.into_iter().map(|r| r.0).collect();
        let mut named = Vec::new();
        if self.peek().tok != Tok::Op(")") {
            loop {
                let start = self.peek().pos;
                let (e, h) = self.key()?;
                height = height.max(h + 1);
                if self.peek().tok == Tok::Op("=>") {
                    self.next();
                    let (v, h) = self.expr(0)?;
                    height = height.max(h + 1);
                    named.push((e, v));
                } else {
                    if !named.is_empty() {
                        return Err(YaqlError::new(
                            "positional argument after a keyword argument",
                            start,
                        ));
                    }
                    args.push(e);
                }
                if self.peek().tok == Tok::Op(",") {
                    self.next();
                    continue;
                }
                break;
            }
        }
        self.expect(")")?;
        let Some(func) = functions::lookup(name) else {
            return Err(YaqlError::new(format!("unknown function '{name}'"), pos));
        };
        if args.len() < func.min || args.len() > func.max {
            let expected = if func.min == func.max {
                format!("{}", func.min)
            } else if func.max == usize::MAX {
                format!("at least {}", func.min)
            } else {
                format!("{} to {}", func.min, func.max)
            };
            return Err(YaqlError::new(
                format!(
                    "{name}() takes {expected} argument(s) (counting a method's receiver), got {}",
                    args.len()
                ),
                pos,
            ));
        }
        if !named.is_empty() && !func.named {
            return Err(YaqlError::new(
                format!("{name}() does not take 'name => value' arguments"),
                pos,
            ));
        }
        Ok((
            Expr::Call(Box::new(Call {
                func,
                args,
                named,
                method,
                pos,
            })),
            height,
        ))
    }
}

/// Task names given as a string literal to `task('name')` anywhere in `e`.
pub fn referenced_tasks(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::This | Expr::Var(_) | Expr::Lit(_) => {}
        Expr::List(items) => items.iter().for_each(|i| referenced_tasks(i, out)),
        Expr::Dict(pairs) => pairs.iter().for_each(|(k, v)| {
            referenced_tasks(k, out);
            referenced_tasks(v, out);
        }),
        Expr::Attr { base, .. } => referenced_tasks(base, out),
        Expr::Index { base, index, .. } => {
            referenced_tasks(base, out);
            referenced_tasks(index, out);
        }
        Expr::Call(c) => {
            if c.func.name == "task"
                && let Some(Expr::Lit(Value::String(name))) = c.args.first()
                && !out.contains(name)
            {
                out.push(name.clone());
            }
            c.args.iter().for_each(|a| referenced_tasks(a, out));
            c.named.iter().for_each(|(k, v)| {
                referenced_tasks(k, out);
                referenced_tasks(v, out);
            });
        }
        Expr::Neg(x, _) | Expr::Not(x) => referenced_tasks(x, out),
        Expr::Bin { left, right, .. } => {
            referenced_tasks(left, out);
            referenced_tasks(right, out);
        }
        Expr::And(l, r) | Expr::Or(l, r) | Expr::Chain(l, r) => {
            referenced_tasks(l, out);
            referenced_tasks(r, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let e = parse("1 + 2 * 3 = 7 and not false or $x").unwrap();
        assert!(matches!(e, Expr::Or(..)));
        let e = parse("$.a -> $ + 1").unwrap();
        assert!(matches!(e, Expr::Chain(..)));
    }

    #[test]
    fn errors() {
        let e = parse("1 +").unwrap_err();
        assert_eq!(e.pos, 3);
        let e = parse("$.x.nosuch()").unwrap_err();
        assert_eq!(e.pos, 4);
        assert!(e.message.contains("unknown function 'nosuch'"));
        let e = parse("len(1, 2)").unwrap_err();
        assert!(e.message.contains("len()"), "{}", e.message);
        let e = parse("(1 2)").unwrap_err();
        assert_eq!(e.pos, 3);
        let deep = "(".repeat(1000) + &")".repeat(1000);
        assert!(parse(&deep).unwrap_err().message.contains("nested"));
        let deep = "-".repeat(1000) + "1";
        assert!(parse(&deep).is_err());
        let deep = "$".to_string() + &".a".repeat(100_000);
        assert!(parse(&deep).unwrap_err().message.contains("nested"));
        let deep = "1".to_string() + &"+1".repeat(100_000);
        assert!(parse(&deep).is_err());
        let ok = "(".repeat(100) + "$" + &".a)".repeat(100);
        assert!(parse(&ok).is_ok());
        // A bare word is a keyword string, as in YAQL (`task(t1)`).
        assert!(matches!(parse("foo").unwrap(), Expr::Lit(Value::String(s)) if s == "foo"));
    }

    #[test]
    fn tasks_referenced() {
        let e =
            parse("task('a').result + task(\"b\").x + task($.n) + task('a') + task(c)").unwrap();
        let mut out = Vec::new();
        referenced_tasks(&e, &mut out);
        assert_eq!(out, vec!["a", "b", "c"]);
    }
}
