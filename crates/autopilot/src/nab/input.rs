//! NAB's files, parsed from text: a series (`timestamp,value`), a
//! detector's results (`timestamp,value,anomaly_score,label`), the label
//! windows (`labels/combined_windows.json`) and the scoring profiles
//! (`profiles.json`). Reading the files is the caller's job; every error
//! here names the line (or JSON key) and the field, and the caller adds
//! the file.

use std::collections::BTreeMap;

use crate::time;

/// Input that is not what NAB's layout promises.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}field `{field}`: {message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct InputError {
    /// 1-based line of a CSV file; `None` for JSON and whole-file errors.
    pub line: Option<usize>,
    /// The column, JSON key or path that is wrong.
    pub field: String,
    /// What was found and what is allowed.
    pub message: String,
}

impl InputError {
    fn at(line: Option<usize>, field: impl Into<String>, message: impl Into<String>) -> InputError {
        InputError {
            line,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A labelled anomaly window: every point with `start_ms <= t <= end_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

/// One series read from `data/<category>/<name>.csv`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Unix milliseconds, in the file's order. NAB's own files repeat a
    /// timestamp here and there and once step back an hour
    /// (`machine_temperature_system_failure.csv`); NAB takes rows in file
    /// order, and so does everything here.
    pub timestamps_ms: Vec<i64>,
    pub values: Vec<f64>,
}

/// A detector's output for one series, as NAB's results files hold it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Results {
    pub timestamps_ms: Vec<i64>,
    pub values: Vec<f64>,
    /// In [0, 1], one per point.
    pub anomaly_scores: Vec<f64>,
}

/// A scoring profile: what a true positive earns and what false positives
/// and missed windows cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// As in `profiles.json`: `standard`, `reward_low_FP_rate`, `reward_low_FN_rate`.
    pub name: String,
    pub tp_weight: f64,
    pub fp_weight: f64,
    pub fn_weight: f64,
}

impl Profile {
    /// NAB's three published profiles, as its `profiles.json` gives them.
    pub fn nab_defaults() -> Vec<Profile> {
        let p = |name: &str, fp_weight, fn_weight| Profile {
            name: name.into(),
            tp_weight: 1.0,
            fp_weight,
            fn_weight,
        };
        vec![
            p("standard", 0.11, 1.0),
            p("reward_low_FP_rate", 0.22, 1.0),
            p("reward_low_FN_rate", 0.11, 2.0),
        ]
    }
}

/// Parses a series: a header naming `timestamp` and `value` (other columns
/// are ignored), then one point per line.
pub fn parse_series(text: &str) -> Result<Series, InputError> {
    let table = Table::new(text, &["timestamp", "value"])?;
    let mut series = Series::default();
    for row in table.rows() {
        let row = row?;
        series.timestamps_ms.push(row.timestamp()?);
        series.values.push(row.number(1)?);
    }
    Ok(series)
}

/// Parses a detector's results: a header naming `timestamp`, `value` and
/// `anomaly_score` (a `label` column is read by nobody: the windows come
/// from the labels file), scores in [0, 1].
pub fn parse_results(text: &str) -> Result<Results, InputError> {
    let table = Table::new(text, &["timestamp", "value", "anomaly_score"])?;
    let mut results = Results::default();
    for row in table.rows() {
        let row = row?;
        results.timestamps_ms.push(row.timestamp()?);
        results.values.push(row.number(1)?);
        let score = row.number(2)?;
        if !(0.0..=1.0).contains(&score) {
            return Err(row.error(2, format!("{score} is outside [0, 1]")));
        }
        results.anomaly_scores.push(score);
    }
    Ok(results)
}

/// Parses `combined_windows.json`: `{"<category>/<file>.csv": [[start, end], ...]}`,
/// each window's start not after its end, windows in order and apart.
pub fn parse_windows(json: &str) -> Result<BTreeMap<String, Vec<Window>>, InputError> {
    let raw: BTreeMap<String, Vec<Vec<String>>> = serde_json::from_str(json).map_err(|e| {
        InputError::at(
            None,
            "windows",
            format!("expected {{\"<category>/<file>.csv\": [[start, end], ...]}}: {e}"),
        )
    })?;
    let mut out = BTreeMap::new();
    for (name, windows) in raw {
        let mut parsed: Vec<Window> = Vec::with_capacity(windows.len());
        for (i, pair) in windows.iter().enumerate() {
            let field = format!("{name}[{i}]");
            let [start, end] = pair.as_slice() else {
                return Err(InputError::at(
                    None,
                    field,
                    format!("a window is [start, end], got {} items", pair.len()),
                ));
            };
            let ts = |s: &str| {
                time::parse_ms(s).ok_or_else(|| {
                    InputError::at(
                        None,
                        field.clone(),
                        format!("`{s}` is not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff])"),
                    )
                })
            };
            let w = Window {
                start_ms: ts(start)?,
                end_ms: ts(end)?,
            };
            if w.start_ms > w.end_ms {
                return Err(InputError::at(
                    None,
                    field,
                    "the window ends before it starts",
                ));
            }
            if parsed.last().is_some_and(|p| p.end_ms >= w.start_ms) {
                return Err(InputError::at(
                    None,
                    field,
                    "windows must be in time order and must not overlap",
                ));
            }
            parsed.push(w);
        }
        out.insert(name, parsed);
    }
    Ok(out)
}

/// Parses `profiles.json`: `{"<name>": {"CostMatrix": {"tpWeight": x,
/// "fpWeight": x, "fnWeight": x, ...}}}`, weights finite and not negative;
/// NAB's three profiles come first, in NAB's order.
pub fn parse_profiles(json: &str) -> Result<Vec<Profile>, InputError> {
    #[derive(serde::Deserialize)]
    struct Costs {
        #[serde(rename = "tpWeight")]
        tp: f64,
        #[serde(rename = "fpWeight")]
        fp: f64,
        #[serde(rename = "fnWeight")]
        fn_: f64,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(rename = "CostMatrix")]
        costs: Costs,
    }
    let raw: BTreeMap<String, Entry> = serde_json::from_str(json).map_err(|e| {
        InputError::at(
            None,
            "profiles",
            format!("expected {{\"<name>\": {{\"CostMatrix\": {{\"tpWeight\", \"fpWeight\", \"fnWeight\"}}}}}}: {e}"),
        )
    })?;
    let mut out = Vec::new();
    for (name, entry) in raw {
        for (key, v) in [
            ("tpWeight", entry.costs.tp),
            ("fpWeight", entry.costs.fp),
            ("fnWeight", entry.costs.fn_),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(InputError::at(
                    None,
                    format!("{name}.CostMatrix.{key}"),
                    format!("{v} must be a finite weight >= 0"),
                ));
            }
        }
        out.push(Profile {
            name,
            tp_weight: entry.costs.tp,
            fp_weight: entry.costs.fp,
            fn_weight: entry.costs.fn_,
        });
    }
    // NAB's order: standard, low FP, low FN, then any others by name.
    let rank = |name: &str| {
        ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]
            .iter()
            .position(|n| *n == name)
            .unwrap_or(3)
    };
    out.sort_by(|a, b| rank(&a.name).cmp(&rank(&b.name)).then(a.name.cmp(&b.name)));
    Ok(out)
}

/// A CSV file with a header and unquoted fields, as NAB writes them.
struct Table<'a> {
    text: &'a str,
    /// The column index of each wanted field, in the order asked.
    columns: Vec<usize>,
    wanted: &'a [&'a str],
}

struct Row<'a> {
    line: usize,
    fields: Vec<&'a str>,
    columns: &'a [usize],
    wanted: &'a [&'a str],
}

impl<'a> Table<'a> {
    fn new(text: &'a str, wanted: &'a [&'a str]) -> Result<Table<'a>, InputError> {
        let header = text
            .lines()
            .next()
            .ok_or_else(|| InputError::at(Some(1), "header", "the file is empty"))?;
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        let columns = wanted
            .iter()
            .map(|w| {
                names.iter().position(|n| n == w).ok_or_else(|| {
                    InputError::at(
                        Some(1),
                        *w,
                        format!("the header `{header}` has no `{w}` column"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Table {
            text,
            columns,
            wanted,
        })
    }

    fn rows(&self) -> impl Iterator<Item = Result<Row<'_>, InputError>> {
        self.text
            .lines()
            .enumerate()
            .skip(1)
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                let row = Row {
                    line: i + 1,
                    fields: l.split(',').map(str::trim).collect(),
                    columns: &self.columns,
                    wanted: self.wanted,
                };
                match self.columns.iter().position(|&c| c >= row.fields.len()) {
                    Some(k) => Err(row.error(k, "missing")),
                    None => Ok(row),
                }
            })
    }
}

impl Row<'_> {
    fn error(&self, k: usize, message: impl Into<String>) -> InputError {
        InputError::at(Some(self.line), self.wanted[k], message)
    }

    fn text(&self, k: usize) -> &str {
        self.fields[self.columns[k]]
    }

    fn number(&self, k: usize) -> Result<f64, InputError> {
        let text = self.text(k);
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.error(k, format!("`{text}` is not a finite number"))),
        }
    }

    /// Column 0 as a timestamp.
    fn timestamp(&self) -> Result<i64, InputError> {
        let text = self.text(0);
        time::parse_ms(text).ok_or_else(|| {
            self.error(
                0,
                format!("`{text}` is not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff])"),
            )
        })
    }
}
