//! What the API and the dashboard need of the autopilot beyond the
//! store: forecasts, which come from the signals each node keeps in
//! memory (`controllers::autopilot`). `dwcp up` installs the node's
//! autopilot here once; without one (a process that runs no autopilot)
//! forecasts answer "not supported". Detections, predictions and
//! diagnoses are read from the state like every other record.

use std::sync::{Arc, OnceLock};

use autopilot::pilot::{ForecastQueryError, ForecastView};
use autopilot::signal::SeriesKey;

/// The node's autopilot, as the API reads it.
pub trait AutopilotHook: Send + Sync + 'static {
    /// The forecast of `key` at each of `horizons_ms` with its last
    /// `recent` points.
    fn forecast(
        &self,
        key: &SeriesKey,
        horizons_ms: &[i64],
        recent: usize,
    ) -> Result<ForecastView, ForecastQueryError>;
}

static HOOK: OnceLock<Arc<dyn AutopilotHook>> = OnceLock::new();

/// Installs this process's autopilot (once; later calls are ignored).
/// Only `dwcp up` calls it.
pub fn install_autopilot(hook: Arc<dyn AutopilotHook>) {
    let _ = HOOK.set(hook);
}

/// The installed autopilot, if any.
pub(crate) fn hook() -> Option<&'static Arc<dyn AutopilotHook>> {
    HOOK.get()
}
