//! NAB's layout on disk: every series under `DIR/data/<category>/*.csv`,
//! its windows from `DIR/labels/combined_windows.json`, the profiles from
//! `DIR/profiles.json` (NAB's defaults when absent), and results written
//! back in NAB's layout. Every error names the file (and, from the
//! parser, the line and field).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use autopilot::nab::{self, Profile, Series, Window};

/// One series with its windows.
pub struct Entry {
    /// `<category>/<file>.csv`, as the labels name it.
    pub name: String,
    pub series: Series,
    pub windows: Vec<Window>,
}

impl Entry {
    /// The points in file order: `(t_ms, value)`.
    pub fn points(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        let s = &self.series;
        s.timestamps_ms
            .iter()
            .copied()
            .zip(s.values.iter().copied())
    }
}

/// Everything a NAB run reads.
pub struct Corpus {
    pub entries: Vec<Entry>,
    pub profiles: Vec<Profile>,
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Reads the corpus under `dir`, every series found there, in name order.
pub fn load(dir: &Path) -> Result<Corpus> {
    let data = dir.join("data");
    let labels = dir.join("labels/combined_windows.json");
    if !data.is_dir() || !labels.is_file() {
        bail!(
            "{} is not a NAB directory (--nab): expected data/<category>/*.csv and labels/combined_windows.json in it",
            dir.display()
        );
    }
    let mut windows = nab::input::parse_windows(&read(&labels)?)
        .with_context(|| format!("in {}", labels.display()))?;
    let profiles_path = dir.join("profiles.json");
    let profiles = if profiles_path.is_file() {
        nab::input::parse_profiles(&read(&profiles_path)?)
            .with_context(|| format!("in {}", profiles_path.display()))?
    } else {
        Profile::nab_defaults()
    };
    let mut entries = Vec::new();
    for path in series_files(&data)? {
        let name = relative_name(&data, &path);
        let series = nab::input::parse_series(&read(&path)?)
            .with_context(|| format!("in {}", path.display()))?;
        let Some(w) = windows.remove(&name) else {
            bail!(
                "{} has no entry `{name}` for {}: every series needs its windows (possibly [])",
                labels.display(),
                path.display()
            );
        };
        entries.push(Entry {
            name,
            series,
            windows: w,
        });
    }
    if let Some(name) = windows.keys().next() {
        bail!(
            "{} names `{name}`, which is not under {}: NAB normalises by every labelled window, so its series must be there",
            labels.display(),
            data.display()
        );
    }
    if entries.is_empty() {
        bail!(
            "no series under {} (expected <category>/*.csv)",
            data.display()
        );
    }
    Ok(Corpus { entries, profiles })
}

/// `data/<category>/*.csv`, sorted.
fn series_files(data: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for category in sorted_dir(data)? {
        if category.is_dir() {
            files.extend(
                sorted_dir(&category)?
                    .into_iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "csv")),
            );
        }
    }
    Ok(files)
}

fn sorted_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("listing {}", dir.display()))?;
    paths.sort();
    Ok(paths)
}

/// `category/file.csv` of a file under `data`.
fn relative_name(data: &Path, path: &Path) -> String {
    path.strip_prefix(data)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Reads a detector's stored results for every entry, from
/// `dir/<category>/<detector>_<file>.csv`; `None` when `dir` is absent.
pub fn load_results(
    dir: &Path,
    detector: &str,
    entries: &[Entry],
) -> Result<Option<BTreeMap<String, Vec<f64>>>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut out = BTreeMap::new();
    for e in entries {
        let path = result_path(dir, detector, &e.name);
        let r = nab::input::parse_results(&read(&path)?)
            .with_context(|| format!("in {}", path.display()))?;
        if r.anomaly_scores.len() != e.series.values.len() {
            bail!(
                "{}: {} rows, but the series has {}",
                path.display(),
                r.anomaly_scores.len(),
                e.series.values.len()
            );
        }
        out.insert(e.name.clone(), r.anomaly_scores);
    }
    Ok(Some(out))
}

/// `dir/<category>/<detector>_<file>.csv`.
fn result_path(dir: &Path, detector: &str, name: &str) -> PathBuf {
    let (category, file) = name.rsplit_once('/').unwrap_or(("", name));
    dir.join(category).join(format!("{detector}_{file}"))
}

/// Writes `scores` in NAB's layout under `out/<detector>/`, each file
/// whole (written aside, then renamed).
pub fn write_results(
    out: &Path,
    detector: &str,
    entries: &[Entry],
    scores: &BTreeMap<String, Vec<f64>>,
) -> Result<()> {
    for e in entries {
        let path = result_path(&out.join(detector), detector, &e.name);
        let parent = path.parent().unwrap_or(out);
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        let mut text = String::from("timestamp,value,anomaly_score,label\n");
        for (i, (t, v)) in e.points().enumerate() {
            let label = e.windows.iter().any(|w| w.start_ms <= t && t <= w.end_ms);
            text.push_str(&format!(
                "{},{v},{},{}\n",
                autopilot::time::format_ms(t),
                scores[&e.name][i],
                u8::from(label)
            ));
        }
        let aside = path.with_extension("csv.partial");
        fs::write(&aside, text).with_context(|| format!("writing {}", aside.display()))?;
        fs::rename(&aside, &path).with_context(|| format!("renaming to {}", path.display()))?;
    }
    Ok(())
}
