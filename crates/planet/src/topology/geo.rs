//! Physics: where a place is and how fast light gets there and back.
//!
//! Distances are great circles on a sphere of the Earth's mean radius
//! (haversine formula); the *physical floor* of a round trip is the time
//! light in fibre (about 2/3 of c, 200,000 km/s) takes to cover the distance
//! twice. No network can beat it; every modelled or measured RTT must be at
//! least this.

use serde::{Deserialize, Serialize};

/// The Earth's mean radius, in kilometres (IUGG).
pub const EARTH_RADIUS_KM: f64 = 6371.0;

/// The speed of light in optical fibre, in kilometres per second (~2/3 c).
pub const FIBRE_KM_PER_S: f64 = 200_000.0;

/// A point on the Earth, in degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatLon {
    /// Latitude, -90 (south) to 90 (north).
    pub lat: f64,
    /// Longitude, -180 (west) to 180 (east).
    pub lon: f64,
}

impl LatLon {
    /// A point from latitude and longitude in degrees (not checked: see
    /// [`LatLon::is_valid`]).
    pub const fn new(lat: f64, lon: f64) -> LatLon {
        LatLon { lat, lon }
    }

    /// Whether both coordinates are finite and in range.
    pub fn is_valid(self) -> bool {
        (-90.0..=90.0).contains(&self.lat) && (-180.0..=180.0).contains(&self.lon)
    }
}

/// Great-circle distance between two points in kilometres (haversine).
///
/// ```
/// use planet::topology::geo::{LatLon, distance_km};
/// let dublin = LatLon::new(53.3, -6.3);
/// let frankfurt = LatLon::new(50.1, 8.7);
/// let km = distance_km(dublin, frankfurt);
/// assert!((km - 1090.0).abs() < 20.0);
/// ```
pub fn distance_km(a: LatLon, b: LatLon) -> f64 {
    let (phi1, phi2) = (a.lat.to_radians(), b.lat.to_radians());
    let dphi = phi2 - phi1;
    let dlambda = (b.lon - a.lon).to_radians();
    let h = (dphi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (dlambda / 2.0).sin().powi(2);
    // Rounding can push h a hair above 1 for antipodes; asin needs <= 1.
    2.0 * EARTH_RADIUS_KM * h.clamp(0.0, 1.0).sqrt().asin()
}

/// The physical floor of a round trip over `km` of great circle, in
/// milliseconds: there and back at the speed of light in fibre.
pub fn floor_rtt_ms(km: f64) -> f64 {
    2.0 * km / FIBRE_KM_PER_S * 1000.0
}

/// The physical floor of a round trip between two points, in milliseconds.
pub fn floor_between_ms(a: LatLon, b: LatLon) -> f64 {
    floor_rtt_ms(distance_km(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_distances() {
        // Zero, a quarter meridian, and half the equator.
        let p = LatLon::new(10.0, 20.0);
        assert_eq!(distance_km(p, p), 0.0);
        let quarter = distance_km(LatLon::new(0.0, 0.0), LatLon::new(90.0, 0.0));
        assert!((quarter - EARTH_RADIUS_KM * std::f64::consts::FRAC_PI_2).abs() < 1e-6);
        let half = distance_km(LatLon::new(0.0, 0.0), LatLon::new(0.0, 180.0));
        assert!((half - EARTH_RADIUS_KM * std::f64::consts::PI).abs() < 1e-6);
        // Ashburn to Dublin is about 5,450 km: floor ~54.5 ms against 80.5 measured.
        let km = distance_km(LatLon::new(38.9, -77.4), LatLon::new(53.3, -6.3));
        assert!((5400.0..5500.0).contains(&km), "{km}");
        assert!((floor_rtt_ms(km) - km / 100.0).abs() < 1e-9);
    }

    #[test]
    fn symmetric_and_ranges() {
        let a = LatLon::new(-33.9, 151.2);
        let b = LatLon::new(53.3, -6.3);
        assert_eq!(distance_km(a, b), distance_km(b, a));
        assert!(a.is_valid());
        assert!(!LatLon::new(91.0, 0.0).is_valid());
        assert!(!LatLon::new(0.0, -180.5).is_valid());
        assert!(!LatLon::new(f64::NAN, 0.0).is_valid());
    }
}
