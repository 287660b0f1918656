//! Live updates: one task per API server samples the cluster once a
//! second, renders each page that has watchers once, and hands the same
//! bytes to every watcher's server-sent-event stream. A thousand watchers
//! of a page cost one render a second, not a thousand.
//!
//! A watcher is a bounded channel of one frame: a client too slow to take
//! a frame before the next misses it and gets the newer one (frames are
//! whole pages, so nothing is lost by skipping one).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use serde::Serialize;
use tokio::sync::mpsc;

use super::Page;
use super::history::History;
use super::pages::{View, parts};
use crate::ControlPlane;

/// How often pages are re-rendered and sent.
pub const EVERY: Duration = Duration::from_secs(1);

/// What one frame is rendered for: a page, seen by every tenant (`None`)
/// or by a caller limited to these tenants (sorted).
type Audience = (Page, Option<Vec<state::Name>>);

/// The shared sampler and the watchers of each page.
pub struct Feed {
    history: Mutex<History>,
    /// Watchers of a page with the same tenants share one render.
    watchers: Mutex<HashMap<Audience, Vec<mpsc::Sender<Bytes>>>>,
    status: Mutex<Option<cluster::ClusterStatus>>,
}

#[derive(Serialize)]
struct FrameJson<'a> {
    at_unix_ms: u64,
    parts: HashMap<&'static str, &'a str>,
}

/// Wall-clock milliseconds since the epoch.
pub use ::cluster::unix_now_ms as now_ms;

impl Feed {
    pub fn new() -> Arc<Feed> {
        Arc::new(Feed {
            history: Mutex::new(History::new()),
            watchers: Mutex::new(HashMap::new()),
            status: Mutex::new(None),
        })
    }

    /// Samples and sends until the task is aborted.
    pub async fn run<P: ControlPlane>(self: Arc<Feed>, plane: Arc<P>) {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            let at = now_ms();
            plane.read_local(|state| lock(&self.history).observe(at, state.reports()));
            let pages: Vec<Audience> = {
                let mut watchers = lock(&self.watchers);
                // Watchers that left close their receivers.
                for list in watchers.values_mut() {
                    list.retain(|w| !w.is_closed());
                }
                watchers.retain(|_, list| !list.is_empty());
                watchers.keys().cloned().collect()
            };
            // The Raft status is asked of the leader: only when someone
            // watches (a page load asks for its own, see `refresh_status`).
            if !pages.is_empty() {
                self.refresh_status(&*plane).await;
            }
            for audience in pages {
                let frame = self.frame_for(&*plane, audience.0, audience.1.as_deref());
                let watchers = lock(&self.watchers)
                    .get(&audience)
                    .cloned()
                    .unwrap_or_default();
                for w in watchers {
                    // Full: the client has not taken the last frame yet;
                    // it gets the next one.
                    let _ = w.try_send(frame.clone());
                }
            }
        }
    }

    /// Asks the cluster for its Raft status (members, leader, lag), which
    /// the pages show; `None` when it does not answer within a tick.
    pub async fn refresh_status<P: ControlPlane>(&self, plane: &P) {
        let status = tokio::time::timeout(EVERY, plane.status())
            .await
            .ok()
            .and_then(Result::ok);
        *lock(&self.status) = status;
    }

    /// Runs `f` over what this node has sampled of the cluster (rates,
    /// nodes' health): for the API's answers that show them.
    pub fn with_history<R>(&self, f: impl FnOnce(&History) -> R) -> R {
        f(&lock(&self.history))
    }

    /// `page` rendered now as one server-sent event, for a caller limited
    /// to `tenants` (`None`: every tenant), as [`Feed::render_for`]
    /// renders it.
    fn frame_for<P: ControlPlane>(
        &self,
        plane: &P,
        page: Page,
        tenants: Option<&[state::Name]>,
    ) -> Bytes {
        let rendered = self.render_for(plane, page, tenants);
        let json = serde_json::to_string(&FrameJson {
            at_unix_ms: now_ms(),
            parts: rendered
                .iter()
                .map(|(id, html)| (*id, html.as_str()))
                .collect(),
        })
        .unwrap_or_else(|_| "{}".to_string());
        Bytes::from(format!("event: frame\ndata: {json}\n\n"))
    }

    /// The parts of `page` now, for a caller limited to `tenants`
    /// (`None`: every tenant): then built from their tenants' records only
    /// (`State::visible_to`), without the cluster-wide charts.
    pub fn render_for<P: ControlPlane>(
        &self,
        plane: &P,
        page: Page,
        tenants: Option<&[state::Name]>,
    ) -> Vec<(&'static str, String)> {
        if let Some(tenants) = tenants {
            let empty = History::new();
            let status = lock(&self.status);
            return plane.read_local(|state| {
                parts(
                    page,
                    &View {
                        state: &state.visible_to(tenants),
                        history: &empty,
                        status: status.as_ref(),
                        now_ms: now_ms(),
                    },
                )
            });
        }
        let history = lock(&self.history);
        let status = lock(&self.status);
        plane.read_local(|state| {
            parts(
                page,
                &View {
                    state,
                    history: &history,
                    status: status.as_ref(),
                    now_ms: now_ms(),
                },
            )
        })
    }

    /// A new watcher of `page`, seeing every tenant (`None`) or only
    /// `tenants` (a caller limited to some: their frames are rendered from
    /// [`state::State::visible_to`], on the server): its stream starts
    /// with the page as it is now, then one frame a second.
    pub fn watch<P: ControlPlane>(
        &self,
        plane: &P,
        page: Page,
        tenants: Option<Vec<state::Name>>,
    ) -> EventStream {
        let tenants = tenants.map(|mut t| {
            t.sort();
            t.dedup();
            t
        });
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(self.frame_for(plane, page, tenants.as_deref()));
        lock(&self.watchers)
            .entry((page, tenants))
            .or_default()
            .push(tx);
        EventStream { rx }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these leaves plain data behind.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A `text/event-stream` response body: the frames a [`Feed`] sends, until
/// the client goes away (which drops this and closes the channel).
pub struct EventStream {
    rx: mpsc::Receiver<Bytes>,
}

impl Body for EventStream {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|frame| frame.map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Stops the feed's task when the server that owns it goes away.
pub struct Running(pub tokio::task::JoinHandle<()>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}
