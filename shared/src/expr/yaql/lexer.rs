//! YAQL tokenizer: turns the text between `<%` and `%>` into tokens, each
//! tagged with its character offset so errors can point at it.

use super::YaqlError;

/// One lexical token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Int(i64),
    Float(f64),
    Str(String),
    /// A bare identifier; keywords (`and`, `or`, `not`, `in`, `mod`, `true`,
    /// `false`, `null`) are identifiers too and are told apart by the parser.
    Ident(String),
    /// `$` (empty name) or `$name`.
    Var(String),
    /// Punctuation and operators, e.g. `(`, `=>`, `?.`, `<=`.
    Op(&'static str),
    Eof,
}

/// A token and the character offset where it starts.
#[derive(Debug, Clone)]
pub struct Token {
    pub tok: Tok,
    pub pos: usize,
}

// Longest operators first so that `<=` wins over `<`.
const OPS: &[&str] = &[
    "=>", "->", "?.", "!=", "==", "<=", ">=", "(", ")", "[", "]", "{", "}", ",", ".", "+", "-",
    "*", "/", "=", "<", ">", ":",
];

/// Split `src` into tokens; the last one is always [`Tok::Eof`].
pub fn tokenize(src: &str) -> Result<Vec<Token>, YaqlError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() {
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            // A dot followed by a digit makes a float; `1.foo()` stays a method call.
            let mut is_float = false;
            if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
                is_float = true;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    is_float = true;
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().collect();
            let tok = if is_float {
                match text.parse::<f64>() {
                    Ok(f) if f.is_finite() => Tok::Float(f),
                    _ => return Err(YaqlError::new(format!("invalid number '{text}'"), start)),
                }
            } else {
                match text.parse::<i64>() {
                    Ok(n) => Tok::Int(n),
                    Err(_) => match text.parse::<f64>() {
                        Ok(f) if f.is_finite() => Tok::Float(f),
                        _ => return Err(YaqlError::new(format!("invalid number '{text}'"), start)),
                    },
                }
            };
            out.push(Token { tok, pos: start });
            continue;
        }
        if c == '\'' || c == '"' || c == '`' {
            let quote = c;
            i += 1;
            let mut s = String::new();
            loop {
                let Some(&ch) = chars.get(i) else {
                    return Err(YaqlError::new("unterminated string literal", start));
                };
                i += 1;
                if ch == quote {
                    break;
                }
                if ch == '\\' {
                    let Some(&esc) = chars.get(i) else {
                        return Err(YaqlError::new("unterminated string literal", start));
                    };
                    i += 1;
                    match esc {
                        'n' => s.push('\n'),
                        't' => s.push('\t'),
                        'r' => s.push('\r'),
                        '0' => s.push('\0'),
                        '\\' | '\'' | '"' | '`' => s.push(esc),
                        'u' => {
                            let hex: String = chars.iter().skip(i).take(4).collect();
                            let code = (hex.len() == 4)
                                .then(|| u32::from_str_radix(&hex, 16).ok())
                                .flatten()
                                .and_then(char::from_u32);
                            match code {
                                Some(ch) => {
                                    s.push(ch);
                                    i += 4;
                                }
                                None => {
                                    return Err(YaqlError::new(
                                        "invalid \\u escape in string literal",
                                        i - 2,
                                    ));
                                }
                            }
                        }
                        // Unknown escapes are kept verbatim, as Python does.
                        other => {
                            s.push('\\');
                            s.push(other);
                        }
                    }
                } else {
                    s.push(ch);
                }
            }
            out.push(Token {
                tok: Tok::Str(s),
                pos: start,
            });
            continue;
        }
        if c == '$' {
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let name: String = chars[start + 1..i].iter().collect();
            out.push(Token {
                tok: Tok::Var(name),
                pos: start,
            });
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            out.push(Token {
                tok: Tok::Ident(name),
                pos: start,
            });
            continue;
        }
        let op = OPS.iter().find(|op| {
            op.chars()
                .enumerate()
                .all(|(k, oc)| chars.get(i + k) == Some(&oc))
        });
        match op {
            Some(op) => {
                i += op.chars().count();
                out.push(Token {
                    tok: Tok::Op(op),
                    pos: start,
                });
            }
            None => return Err(YaqlError::new(format!("unexpected character '{c}'"), start)),
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: chars.len(),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_strings_ops() {
        assert_eq!(
            toks("$.a[0] <= 1.5 'x\\'y' \"z\" => ->"),
            vec![
                Tok::Var(String::new()),
                Tok::Op("."),
                Tok::Ident("a".into()),
                Tok::Op("["),
                Tok::Int(0),
                Tok::Op("]"),
                Tok::Op("<="),
                Tok::Float(1.5),
                Tok::Str("x'y".into()),
                Tok::Str("z".into()),
                Tok::Op("=>"),
                Tok::Op("->"),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("1.len()"),
            vec![
                Tok::Int(1),
                Tok::Op("."),
                Tok::Ident("len".into()),
                Tok::Op("("),
                Tok::Op(")"),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn errors_have_positions() {
        let e = tokenize("1 + 'abc").unwrap_err();
        assert_eq!(e.pos, 4);
        let e = tokenize("é + #").unwrap_err();
        assert_eq!(e.pos, 4);
    }
}
