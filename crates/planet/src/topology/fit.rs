//! The route-inflation model, fitted on measured RTTs.
//!
//! Packets do not travel great circles: cables follow coasts and land
//! routes, and routers queue. The model is affine in the physical floor,
//! `rtt ≈ inflation × floor + constant_ms`, fitted by ordinary least
//! squares over every unordered pair of a measured matrix (the two
//! directions averaged), and never below the floor. The fit runs from the
//! CSV text (no I/O); [`Calibration::aws_2017`] fits the table shipped in
//! `crates/planet/data/` (a copy of `../shared/data/rtt/`).

use serde::Serialize;

use super::geo::{LatLon, distance_km, floor_rtt_ms};

/// The measured matrix: 10 AWS regions, 2017 (rows from, columns to, ms).
pub const AWS_2017_RTT_CSV: &str = include_str!("../../data/aws-10-regions-2017.csv");
/// Where those 10 regions are: region,city,continent,country,lat,lon.
pub const AWS_2017_REGIONS_CSV: &str = include_str!("../../data/regions-10.csv");

/// Why calibration data is refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CalibrationError {
    /// A line of a CSV that does not have the expected shape.
    #[error("{file} line {line}: {reason}")]
    Csv {
        /// Which input: `matrix` or `locations`.
        file: &'static str,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A region of the matrix has no location.
    #[error("locations: no row for region `{0}` of the matrix")]
    NoLocation(String),
    /// Fewer than two pairs, or all at one distance: no line fits.
    #[error("matrix: {0} pairs at distinct distances are too few to fit a line")]
    TooFew(usize),
}

/// A fitted model with its quality on the pairs it was fitted on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Calibration {
    /// Slope: how many times longer than the floor routes are.
    pub inflation: f64,
    /// Intercept in milliseconds (per-path overheads: access, routers).
    pub constant_ms: f64,
    /// The median of measured ÷ floor over the pairs (the plain ratio).
    pub median_ratio: f64,
    /// Pairs fitted.
    pub pairs: usize,
    /// Mean absolute error of the model on those pairs, in milliseconds.
    pub mean_abs_error_ms: f64,
    /// The largest absolute error, in milliseconds, and its pair.
    pub max_error_ms: f64,
    /// The pair with the largest error.
    pub max_error_pair: (String, String),
}

/// One measured pair, as used by the fit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeasuredPair {
    /// One region.
    pub a: String,
    /// The other.
    pub b: String,
    /// Great-circle distance in km.
    pub km: f64,
    /// Physical floor in ms.
    pub floor_ms: f64,
    /// Measured RTT in ms (mean of both directions).
    pub ms: f64,
}

impl Calibration {
    /// The model's RTT for a pair whose physical floor is `floor_ms`: the
    /// fitted line, never below the floor.
    pub fn model_ms(&self, floor_ms: f64) -> f64 {
        (self.inflation * floor_ms + self.constant_ms).max(floor_ms)
    }

    /// The fit on the shipped AWS 2017 table.
    pub fn aws_2017() -> Calibration {
        // The shipped table is fixed and the `aws_2017_fit` test fits it, so
        // this cannot fail at run time.
        fit(AWS_2017_RTT_CSV, AWS_2017_REGIONS_CSV).expect("the shipped AWS table fits")
    }
}

fn csv_err(file: &'static str, line: usize, reason: impl Into<String>) -> CalibrationError {
    CalibrationError::Csv {
        file,
        line,
        reason: reason.into(),
    }
}

fn number(file: &'static str, line: usize, v: &str) -> Result<f64, CalibrationError> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| csv_err(file, line, format!("`{v}` is not a number")))
}

/// The unordered pairs of a measured matrix with their distances, from the
/// two CSV texts (the two directions of a pair averaged).
pub fn measured_pairs(
    matrix_csv: &str,
    locations_csv: &str,
) -> Result<Vec<MeasuredPair>, CalibrationError> {
    let mut places: Vec<(String, LatLon)> = Vec::new();
    for (i, line) in locations_csv.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 6 {
            return Err(csv_err(
                "locations",
                i + 1,
                "expected region,city,continent,country,lat,lon",
            ));
        }
        let at = LatLon::new(
            number("locations", i + 1, f[4])?,
            number("locations", i + 1, f[5])?,
        );
        if !at.is_valid() {
            return Err(csv_err(
                "locations",
                i + 1,
                "latitude or longitude out of range",
            ));
        }
        places.push((f[0].trim().to_string(), at));
    }
    let mut lines = matrix_csv
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(csv_err("matrix", 1, "empty"));
    };
    let names: Vec<&str> = header.split(',').skip(1).map(str::trim).collect();
    let n = names.len();
    let mut rows = vec![vec![0.0; n]; n];
    let mut seen = 0;
    for (i, line) in lines {
        let f: Vec<&str> = line.split(',').collect();
        let row = names
            .iter()
            .position(|x| *x == f[0].trim())
            .ok_or_else(|| csv_err("matrix", i + 1, format!("row `{}` is not a column", f[0])))?;
        if f.len() != n + 1 {
            return Err(csv_err("matrix", i + 1, format!("expected {} values", n)));
        }
        for (j, v) in f[1..].iter().enumerate() {
            rows[row][j] = number("matrix", i + 1, v)?;
        }
        seen += 1;
    }
    if seen != n {
        return Err(csv_err("matrix", 1, format!("{seen} rows for {n} columns")));
    }
    let at = |name: &str| {
        places
            .iter()
            .find(|(p, _)| p == name)
            .map(|(_, at)| *at)
            .ok_or_else(|| CalibrationError::NoLocation(name.to_string()))
    };
    let mut pairs = Vec::with_capacity(n * (n.saturating_sub(1)) / 2);
    for i in 0..n {
        for j in i + 1..n {
            let km = distance_km(at(names[i])?, at(names[j])?);
            pairs.push(MeasuredPair {
                a: names[i].to_string(),
                b: names[j].to_string(),
                km,
                floor_ms: floor_rtt_ms(km),
                ms: (rows[i][j] + rows[j][i]) / 2.0,
            });
        }
    }
    Ok(pairs)
}

/// Fits `rtt = inflation × floor + constant` by least squares over the
/// matrix's pairs and reports the fit's errors on them.
pub fn fit(matrix_csv: &str, locations_csv: &str) -> Result<Calibration, CalibrationError> {
    let pairs = measured_pairs(matrix_csv, locations_csv)?;
    let n = pairs.len() as f64;
    let mean_x = pairs.iter().map(|p| p.floor_ms).sum::<f64>() / n;
    let mean_y = pairs.iter().map(|p| p.ms).sum::<f64>() / n;
    let sxx: f64 = pairs.iter().map(|p| (p.floor_ms - mean_x).powi(2)).sum();
    let sxy: f64 = pairs
        .iter()
        .map(|p| (p.floor_ms - mean_x) * (p.ms - mean_y))
        .sum();
    if pairs.len() < 2 || sxx <= f64::EPSILON {
        return Err(CalibrationError::TooFew(pairs.len()));
    }
    let inflation = sxy / sxx;
    let constant_ms = mean_y - inflation * mean_x;
    let mut ratios: Vec<f64> = pairs
        .iter()
        .filter(|p| p.floor_ms > 0.0)
        .map(|p| p.ms / p.floor_ms)
        .collect();
    ratios.sort_by(f64::total_cmp);
    let median_ratio = match ratios.len() {
        0 => f64::NAN,
        k if k % 2 == 1 => ratios[k / 2],
        k => (ratios[k / 2 - 1] + ratios[k / 2]) / 2.0,
    };
    let mut c = Calibration {
        inflation,
        constant_ms,
        median_ratio,
        pairs: pairs.len(),
        mean_abs_error_ms: 0.0,
        max_error_ms: 0.0,
        max_error_pair: (String::new(), String::new()),
    };
    let mut total = 0.0;
    for p in &pairs {
        let e = (c.model_ms(p.floor_ms) - p.ms).abs();
        total += e;
        if e > c.max_error_ms {
            c.max_error_ms = e;
            c.max_error_pair = (p.a.clone(), p.b.clone());
        }
    }
    c.mean_abs_error_ms = total / n;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_2017_fit() {
        let c = fit(AWS_2017_RTT_CSV, AWS_2017_REGIONS_CSV).unwrap();
        println!(
            "fit on {} pairs: rtt = {:.4} x floor + {:.2} ms; median ratio {:.4}; \
             mean abs error {:.2} ms, max {:.2} ms ({}-{})",
            c.pairs,
            c.inflation,
            c.constant_ms,
            c.median_ratio,
            c.mean_abs_error_ms,
            c.max_error_ms,
            c.max_error_pair.0,
            c.max_error_pair.1
        );
        assert_eq!(c.pairs, 45);
        assert!((1.0..3.0).contains(&c.inflation), "{}", c.inflation);
        assert!((1.0..3.0).contains(&c.median_ratio), "{}", c.median_ratio);
        assert!(c.constant_ms.abs() < 50.0, "{}", c.constant_ms);
        // Every measured pair is above its floor, and so is every modelled one.
        let pairs = measured_pairs(AWS_2017_RTT_CSV, AWS_2017_REGIONS_CSV).unwrap();
        for p in &pairs {
            assert!(p.ms >= p.floor_ms, "{p:?}");
            assert!(c.model_ms(p.floor_ms) >= p.floor_ms);
        }
        // The model explains the table to within tens of ms on average; the
        // worst pair is a detour (a route far from the great circle).
        assert!(c.mean_abs_error_ms < 50.0, "{}", c.mean_abs_error_ms);
        assert!(c.max_error_ms < 200.0, "{}", c.max_error_ms);
        assert_eq!(Calibration::aws_2017(), c);
    }

    #[test]
    fn exact_line_is_recovered() {
        // Three places on the equator; RTTs exactly 1.5 x floor + 10.
        let locations = "region,city,continent,country,lat,lon\n\
                         a,A,x,X,0,0\nb,B,x,X,0,10\nc,C,x,X,0,30\n";
        let f = |d: f64| {
            1.5 * floor_rtt_ms(distance_km(LatLon::new(0.0, 0.0), LatLon::new(0.0, d))) + 10.0
        };
        let matrix = format!(
            "from,a,b,c\na,0,{ab},{ac}\nb,{ab},0,{bc}\nc,{ac},{bc},0\n",
            ab = f(10.0),
            ac = f(30.0),
            bc = f(20.0)
        );
        let c = fit(&matrix, locations).unwrap();
        assert!((c.inflation - 1.5).abs() < 1e-9);
        assert!((c.constant_ms - 10.0).abs() < 1e-6);
        assert!(c.max_error_ms < 1e-6);
    }

    #[test]
    fn bad_csv_is_refused_with_its_line() {
        let locations = "region,city,continent,country,lat,lon\na,A,x,X,0,0\nb,B,x,X,0,x\n";
        let err = fit("from,a,b\na,0,1\nb,1,0\n", locations).unwrap_err();
        assert_eq!(
            err,
            CalibrationError::Csv {
                file: "locations",
                line: 3,
                reason: "`x` is not a number".into()
            }
        );
        let locations = "region,city,continent,country,lat,lon\na,A,x,X,0,0\n";
        let err = fit("from,a,b\na,0,1\nb,1,0\n", locations).unwrap_err();
        assert_eq!(err, CalibrationError::NoLocation("b".into()));
    }
}
