//! Queries over the metrics of an analysis window: a check's `metric` is a
//! metric's name or arithmetic over names, e.g.
//! `canary_errors / canary_requests - baseline_errors / baseline_requests`.
//! Parsed (and its names checked) when the plan is; evaluated per
//! measurement, where a name not measured or a division by zero makes the
//! check inconclusive rather than a made-up number.

use std::collections::BTreeMap;

/// Longest query text.
const MAX_LEN: usize = 500;
/// Deepest nesting of parentheses and unary minus.
const MAX_DEPTH: usize = 32;

/// A parsed query.
#[derive(Clone, Debug, PartialEq)]
pub enum Query {
    Number(f64),
    Metric(String),
    Negate(Box<Query>),
    Binary(Box<Query>, Op, Box<Query>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add,
    Subtract,
    Multiply,
    Divide,
}

impl Query {
    /// Parses `text`; the error says where and what was expected.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// let q = state::rollout::Query::parse("(a + b) / 2").unwrap();
    /// let m = BTreeMap::from([("a".to_string(), 1.0), ("b".to_string(), 3.0)]);
    /// assert_eq!(q.eval(&m), Some(2.0));
    /// ```
    pub fn parse(text: &str) -> Result<Query, String> {
        if text.len() > MAX_LEN {
            return Err(format!("at most {MAX_LEN} characters"));
        }
        let mut p = Parser {
            text: text.as_bytes(),
            at: 0,
            depth: 0,
        };
        let q = p.sum()?;
        p.space();
        if p.at < p.text.len() {
            return Err(p.expected("an operator (+ - * /) or the end"));
        }
        Ok(q)
    }

    /// The metric names the query reads.
    pub fn metrics(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut out);
        out
    }

    fn walk<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Query::Number(_) => {}
            Query::Metric(name) => out.push(name),
            Query::Negate(q) => q.walk(out),
            Query::Binary(a, _, b) => {
                a.walk(out);
                b.walk(out);
            }
        }
    }

    /// The value over `metrics`; `None` when a metric is missing, a
    /// division is by zero, or the result is not finite.
    pub fn eval(&self, metrics: &BTreeMap<String, f64>) -> Option<f64> {
        let v = match self {
            Query::Number(n) => *n,
            Query::Metric(name) => *metrics.get(name)?,
            Query::Negate(q) => -q.eval(metrics)?,
            Query::Binary(a, op, b) => {
                let (a, b) = (a.eval(metrics)?, b.eval(metrics)?);
                match op {
                    Op::Add => a + b,
                    Op::Subtract => a - b,
                    Op::Multiply => a * b,
                    Op::Divide if b == 0.0 => return None,
                    Op::Divide => a / b,
                }
            }
        };
        v.is_finite().then_some(v)
    }
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
    depth: usize,
}

impl Parser<'_> {
    fn space(&mut self) {
        while self.text.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn expected(&self, what: &str) -> String {
        match self.text.get(self.at) {
            Some(&c) => format!(
                "at character {}: `{}`, expected {what}",
                self.at + 1,
                c as char
            ),
            None => format!("at the end: expected {what}"),
        }
    }

    fn sum(&mut self) -> Result<Query, String> {
        let mut q = self.product()?;
        loop {
            self.space();
            let op = match self.text.get(self.at) {
                Some(b'+') => Op::Add,
                Some(b'-') => Op::Subtract,
                _ => return Ok(q),
            };
            self.at += 1;
            q = Query::Binary(Box::new(q), op, Box::new(self.product()?));
        }
    }

    fn product(&mut self) -> Result<Query, String> {
        let mut q = self.factor()?;
        loop {
            self.space();
            let op = match self.text.get(self.at) {
                Some(b'*') => Op::Multiply,
                Some(b'/') => Op::Divide,
                _ => return Ok(q),
            };
            self.at += 1;
            q = Query::Binary(Box::new(q), op, Box::new(self.factor()?));
        }
    }

    fn factor(&mut self) -> Result<Query, String> {
        self.space();
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}"));
        }
        let start = self.at;
        let q = match self.text.get(self.at) {
            Some(b'-') => {
                self.at += 1;
                Query::Negate(Box::new(self.factor()?))
            }
            Some(b'(') => {
                self.at += 1;
                let q = self.sum()?;
                self.space();
                if self.text.get(self.at) != Some(&b')') {
                    return Err(self.expected("`)`"));
                }
                self.at += 1;
                q
            }
            Some(c) if c.is_ascii_digit() || *c == b'.' => {
                while self
                    .text
                    .get(self.at)
                    .is_some_and(|c| c.is_ascii_digit() || *c == b'.' || *c == b'e')
                {
                    self.at += 1;
                }
                let digits = std::str::from_utf8(&self.text[start..self.at]).unwrap_or("");
                let n: f64 = digits.parse().map_err(|_| {
                    format!("at character {}: `{digits}` is not a number", start + 1)
                })?;
                Query::Number(n)
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                while self
                    .text
                    .get(self.at)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    self.at += 1;
                }
                Query::Metric(String::from_utf8_lossy(&self.text[start..self.at]).into_owned())
            }
            _ => return Err(self.expected("a metric, a number, `-` or `(`")),
        };
        self.depth -= 1;
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_parentheses_and_what_is_not_measured() {
        let m = BTreeMap::from([
            ("a".to_string(), 6.0),
            ("b".to_string(), 2.0),
            ("z".to_string(), 0.0),
        ]);
        let eval = |t: &str| Query::parse(t).unwrap().eval(&m);
        assert_eq!(eval("a - b * 2"), Some(2.0));
        assert_eq!(eval("(a - b) * 2"), Some(8.0));
        assert_eq!(eval("a / b / 3"), Some(1.0));
        assert_eq!(eval("-a + 1.5e1"), Some(9.0));
        assert_eq!(eval("a / z"), None, "division by zero");
        assert_eq!(eval("a + missing"), None, "not measured");
        assert_eq!(
            Query::parse("a + b * (c - a)").unwrap().metrics(),
            ["a", "b", "c", "a"]
        );
    }

    #[test]
    fn bad_queries_say_where() {
        for (text, want) in [
            ("a +", "at the end: expected a metric"),
            ("a b", "at character 3: `b`, expected an operator"),
            ("(a", "at the end: expected `)`"),
            ("1..2", "`1..2` is not a number"),
            ("a # b", "at character 3: `#`"),
        ] {
            let err = Query::parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
        assert!(
            Query::parse(&"(".repeat(40))
                .unwrap_err()
                .contains("nested deeper")
        );
        assert!(
            Query::parse(&"a+".repeat(300))
                .unwrap_err()
                .contains("at most 500")
        );
    }
}
