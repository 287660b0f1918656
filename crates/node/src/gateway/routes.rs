//! The route table: which app serves a request, and which of its versions.
//!
//! Pure data and pure functions: [`RouteTable::find`] matches a host and a
//! path, [`pick`] chooses a version by weight from a key's hash. The table
//! is immutable once built; the gateway swaps whole tables
//! ([`super::Gateway::set_routes`]).
//!
//! Matching: a route's prefix matches whole path segments (`/hello` matches
//! `/hello` and `/hello/x`, not `/hellox`; `/` matches every path). Routes
//! that name the request's host are tried first, longest prefix first; only
//! when none of them matches are the routes without a host tried, again
//! longest prefix first — on a host that routes name, only those of the
//! host's tenant (a host belongs to one tenant: no other tenant's app
//! answers on its origin). Hosts compare without the port and case.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use state::Name;

use super::microvm::PreparedVersion;

/// An app: its tenant and its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AppKey {
    pub tenant: Name,
    pub app: Name,
}

impl AppKey {
    /// The app `app` of `tenant`.
    pub fn new(tenant: Name, app: Name) -> AppKey {
        AppKey { tenant, app }
    }
}

impl fmt::Display for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.app)
    }
}

/// What a route allows one request, and the app all its requests together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteLimits {
    /// Largest request body; a larger one is answered 413 (at once when
    /// `Content-Length` says so, else as soon as the body passes it).
    pub max_request_bytes: usize,
    /// Largest response body the app may send; a larger one (or output the
    /// sandbox had to cut at its output cap) is answered 500
    /// `response_too_large`.
    pub max_response_bytes: usize,
    /// Requests of this app served at once; one more is answered 503 at
    /// once, never queued.
    pub max_concurrency: usize,
    /// Time from admission to the answer; past it the gateway answers 504.
    /// Prepare the versions' templates with a sandbox deadline no longer
    /// than this, so that the guest is stopped then too.
    pub timeout: Duration,
    /// Serve from a warm pool ([`sandbox::WarmPolicy::KeepAlive`]: an
    /// instance keeps its state between requests) instead of a fresh
    /// sandbox per request.
    pub warm: bool,
}

impl Default for RouteLimits {
    fn default() -> Self {
        RouteLimits {
            max_request_bytes: 1 << 20,
            max_response_bytes: 1 << 20,
            max_concurrency: 64,
            timeout: Duration::from_secs(10),
            warm: false,
        }
    }
}

/// One version of a route's app, with its share of the traffic.
#[derive(Clone, Debug)]
pub struct RouteVersion {
    /// The version's number (1, 2, 3, ... per app).
    pub number: u64,
    /// Relative share of requests; 0 takes none.
    pub weight: u32,
    /// The prepared template (and pools) that serves it, on its tier.
    pub handle: PreparedVersion,
}

/// One entry of the table: where an app is served, by which versions and
/// under which limits.
#[derive(Clone, Debug)]
pub struct Route {
    /// Only requests for this host (no port) match; `None` matches any host,
    /// after the routes that name one.
    pub host: Option<String>,
    /// Path prefix, e.g. `/hello`; matched on whole segments.
    pub prefix: String,
    pub app: AppKey,
    /// The versions this node serves itself; empty when other nodes hold
    /// the app.
    pub versions: Vec<RouteVersion>,
    /// Gateways (`host:port`) of the nodes that hold the app, when this
    /// node does not: requests are forwarded to one of them. Ignored when
    /// `versions` is not empty.
    pub forward: Vec<String>,
    pub limits: RouteLimits,
}

impl Route {
    /// The version numbered `number`, if the route serves it.
    pub fn version(&self, number: u64) -> Option<&RouteVersion> {
        self.versions.iter().find(|v| v.number == number)
    }

    /// The version a request whose key hashes to `key_hash` goes to, or
    /// `None` when no version has a weight above 0.
    pub fn pick(&self, key_hash: u64) -> Option<&RouteVersion> {
        pick_from(self.versions.iter().map(|v| v.weight), key_hash).map(|i| &self.versions[i])
    }
}

/// Why a route table cannot be built: the route (by index), the field, the
/// value and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("route {index}: {field} `{value}` is not allowed: {allowed}")]
pub struct RouteError {
    pub index: usize,
    pub field: &'static str,
    pub value: String,
    pub allowed: String,
}

/// The routes a gateway serves, indexed for lookup.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    /// Per host (lowercase): indexes into `routes`, longest prefix first.
    by_host: HashMap<String, Vec<usize>>,
    /// Routes without a host, longest prefix first.
    any_host: Vec<usize>,
    /// The tenant each named host (lowercase) belongs to, from the state
    /// (`state::claims`): also the hosts of apps not deployed yet, whose
    /// routes are not in the table.
    owners: HashMap<String, Name>,
}

/// A route that matched a request, and how the path splits around it.
#[derive(Clone, Copy, Debug)]
pub struct Match<'a> {
    pub route: &'a Route,
    /// The route's prefix as the app sees it (`SCRIPT_NAME`): empty for `/`.
    pub script_name: &'a str,
    /// The rest of the path (`PATH_INFO`): empty or starting with `/`.
    pub path_info: &'a str,
}

impl RouteTable {
    /// A table with no routes: every request is answered 404.
    pub fn empty() -> RouteTable {
        RouteTable::default()
    }

    /// Checks and indexes `routes`. Hosts are lowercased and a prefix's
    /// trailing `/` is dropped (except for `/` itself).
    pub fn new(routes: Vec<Route>) -> Result<RouteTable, RouteError> {
        let mut table = RouteTable::default();
        let mut seen = HashMap::new();
        for (index, mut route) in routes.into_iter().enumerate() {
            let bad = |field, value: String, allowed: &str| RouteError {
                index,
                field,
                value: value.chars().take(200).collect(),
                allowed: allowed.to_string(),
            };
            route.prefix = normalize_prefix(&route.prefix).ok_or_else(|| {
                bad(
                    "prefix",
                    route.prefix.clone(),
                    "a path starting with `/`, without empty segments, `?`, `#` or spaces",
                )
            })?;
            if let Some(host) = &route.host {
                let valid = !host.is_empty()
                    && host.len() <= 253
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
                if !valid {
                    return Err(bad(
                        "host",
                        host.clone(),
                        "a DNS name of letters, digits, `-` and `.`, without a port",
                    ));
                }
                route.host = Some(host.to_ascii_lowercase());
            }
            if route.limits.max_concurrency == 0 {
                return Err(bad("limits.max_concurrency", "0".into(), "at least 1"));
            }
            if route.limits.timeout.is_zero() {
                return Err(bad("limits.timeout", "0".into(), "a positive duration"));
            }
            let mut numbers = std::collections::HashSet::new();
            for v in &route.versions {
                if !numbers.insert(v.number) {
                    return Err(bad(
                        "versions",
                        v.number.to_string(),
                        "each version at most once per route",
                    ));
                }
                if !v.handle.is_command() {
                    return Err(bad(
                        "versions",
                        v.number.to_string(),
                        "a WASI command module (exporting `_start`), as WAGI apps are",
                    ));
                }
            }
            let place = (route.host.clone(), route.prefix.clone());
            if let Some(first) = seen.insert(place, index) {
                return Err(bad(
                    "prefix",
                    route.prefix.clone(),
                    &format!("one route per host and prefix; route {first} has it already"),
                ));
            }
            match &route.host {
                Some(host) => table.by_host.entry(host.clone()).or_default().push(index),
                None => table.any_host.push(index),
            }
            table.routes.push(route);
        }
        let routes = &table.routes;
        let longest_first = |a: &usize, b: &usize| {
            let len = |i: &usize| routes[*i].prefix.len();
            len(b).cmp(&len(a))
        };
        for list in table.by_host.values_mut() {
            list.sort_by(longest_first);
        }
        table.any_host.sort_by(longest_first);
        Ok(table)
    }

    /// The table, with the tenant each named host belongs to (hosts
    /// lowercase): on such a host only that tenant's routes answer, the
    /// routes for every host included. Without it, a host belongs to the
    /// tenant of the routes that name it.
    pub fn with_owners(mut self, owners: HashMap<String, Name>) -> RouteTable {
        self.owners = owners;
        self
    }

    /// The routes, in the order given.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route serving `path` on `host` (which may carry a port), if any.
    pub fn find<'a>(&'a self, host: Option<&str>, path: &'a str) -> Option<Match<'a>> {
        let host = host.map(host_without_port).map(|h| {
            if h.bytes().any(|b| b.is_ascii_uppercase()) {
                std::borrow::Cow::Owned(h.to_ascii_lowercase())
            } else {
                std::borrow::Cow::Borrowed(h)
            }
        });
        let host_routes = host
            .as_deref()
            .and_then(|h| self.by_host.get(h))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        // On a host that belongs to a tenant, the routes for every host
        // answer only for that tenant.
        let owner = host
            .as_deref()
            .and_then(|h| self.owners.get(h))
            .or_else(|| host_routes.first().map(|&i| &self.routes[i].app.tenant));
        let of_host_tenant =
            |i: &&usize| owner.is_none_or(|owner| &self.routes[**i].app.tenant == owner);
        host_routes
            .iter()
            .chain(self.any_host.iter().filter(of_host_tenant))
            .find_map(|&i| {
                let route = &self.routes[i];
                prefix_rest(&route.prefix, path).map(|rest| (route, rest))
            })
            .map(|(route, path_info)| Match {
                route,
                script_name: if route.prefix == "/" {
                    ""
                } else {
                    &route.prefix
                },
                path_info,
            })
    }
}

/// The part of `path` after `prefix` when `prefix` matches whole segments.
fn prefix_rest<'a>(prefix: &str, path: &'a str) -> Option<&'a str> {
    if prefix == "/" {
        return Some(path);
    }
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn normalize_prefix(prefix: &str) -> Option<String> {
    if !prefix.starts_with('/') || prefix.contains(['?', '#', ' ']) {
        return None;
    }
    if prefix == "/" {
        return Some(prefix.to_string());
    }
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if trimmed[1..].split('/').any(str::is_empty) {
        return None;
    }
    Some(trimmed.to_string())
}

/// `host` without a `:port` (IPv6 literals keep their brackets).
fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Chooses an index of `weights` with probability proportional to its
/// weight, deterministically from `key_hash` (uniform over `u64`, e.g. from
/// [`key_hash`]). `None` when every weight is 0; a weight of 0 is never
/// chosen.
///
/// ```
/// use node::gateway::pick;
/// assert_eq!(pick(&[0, 5, 0], 12345), Some(1));
/// assert_eq!(pick(&[0, 0], 1), None);
/// assert_eq!(pick(&[1, 1], 0), Some(0));
/// assert_eq!(pick(&[1, 1], u64::MAX), Some(1));
/// ```
pub fn pick(weights: &[u32], key_hash: u64) -> Option<usize> {
    pick_from(weights.iter().copied(), key_hash)
}

fn pick_from(weights: impl Iterator<Item = u32> + Clone, key_hash: u64) -> Option<usize> {
    let total: u64 = weights.clone().map(u64::from).sum();
    if total == 0 {
        return None;
    }
    // Multiply-shift maps the hash onto 0..total without modulo bias.
    let point = ((u128::from(key_hash) * u128::from(total)) >> 64) as u64;
    let mut end = 0u64;
    for (i, w) in weights.enumerate() {
        end += u64::from(w);
        if point < end {
            return Some(i);
        }
    }
    unreachable!("point {point} < total {total} lies in some weight's range")
}

/// A stable 64-bit hash of a routing key (FNV-1a, then a finalizer that
/// spreads it over all 64 bits), the same on every node and release.
pub fn key_hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// splitmix64's finalizer: a bijection of `u64` that spreads every input
/// bit over every output bit.
pub(crate) fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments() {
        assert_eq!(prefix_rest("/hello", "/hello"), Some(""));
        assert_eq!(prefix_rest("/hello", "/hello/x/y"), Some("/x/y"));
        assert_eq!(prefix_rest("/hello", "/hellox"), None);
        assert_eq!(prefix_rest("/hello", "/hell"), None);
        assert_eq!(prefix_rest("/", "/anything"), Some("/anything"));
        assert_eq!(prefix_rest("/a/b", "/a/b/c"), Some("/c"));
    }

    #[test]
    fn prefixes_are_normalized_or_refused() {
        assert_eq!(normalize_prefix("/a/").as_deref(), Some("/a"));
        assert_eq!(normalize_prefix("/").as_deref(), Some("/"));
        assert_eq!(normalize_prefix("a"), None);
        assert_eq!(normalize_prefix("/a//b"), None);
        assert_eq!(normalize_prefix("/a?b"), None);
        assert_eq!(normalize_prefix(""), None);
    }

    fn bare(host: Option<&str>, prefix: &str, app: &str) -> Route {
        Route {
            host: host.map(str::to_string),
            prefix: prefix.to_string(),
            app: AppKey::new(
                Name::new("tenant", "t").unwrap(),
                Name::new("app", app).unwrap(),
            ),
            versions: Vec::new(),
            forward: Vec::new(),
            limits: RouteLimits::default(),
        }
    }

    #[test]
    fn host_routes_first_then_longest_prefix() {
        let table = RouteTable::new(vec![
            bare(None, "/", "root"),
            bare(None, "/api/", "api"),
            bare(None, "/api/v2", "api-v2"),
            bare(Some("Shop.Example"), "/", "shop"),
            bare(Some("shop.example"), "/api", "shop-api"),
        ])
        .unwrap();
        let app = |host: Option<&str>, path: &str| {
            let m = table.find(host, path).unwrap();
            (
                m.route.app.app.to_string(),
                m.script_name.to_string(),
                m.path_info.to_string(),
            )
        };
        let owned = |a: &str, s: &str, p: &str| (a.to_string(), s.to_string(), p.to_string());
        assert_eq!(app(None, "/x"), owned("root", "", "/x"));
        assert_eq!(app(None, "/api"), owned("api", "/api", ""));
        assert_eq!(app(None, "/api/v2/x"), owned("api-v2", "/api/v2", "/x"));
        assert_eq!(app(None, "/api/v20"), owned("api", "/api", "/v20"));
        assert_eq!(
            app(Some("shop.example:8443"), "/api/v2"),
            owned("shop-api", "/api", "/v2")
        );
        assert_eq!(app(Some("SHOP.example"), "/x"), owned("shop", "", "/x"));
        assert_eq!(
            app(Some("other.example"), "/api/v2"),
            owned("api-v2", "/api/v2", "")
        );

        // Another tenant's route for every host does not answer on a host
        // a tenant's routes name.
        let mut theirs = bare(None, "/b", "theirs");
        theirs.app.tenant = Name::new("tenant", "other").unwrap();
        let shared = RouteTable::new(vec![
            bare(Some("a.test"), "/a", "a"),
            bare(None, "/c", "c"),
            theirs,
        ])
        .unwrap();
        assert!(shared.find(Some("a.test"), "/b").is_none(), "not theirs");
        assert_eq!(
            shared
                .find(Some("a.test"), "/c")
                .unwrap()
                .route
                .app
                .app
                .as_str(),
            "c"
        );
        assert_eq!(
            shared
                .find(Some("b.test"), "/b")
                .unwrap()
                .route
                .app
                .app
                .as_str(),
            "theirs"
        );

        // A host the state says is another tenant's (its app not deployed
        // yet): no route for every host answers there either.
        let owned = RouteTable::new(vec![bare(None, "/c", "c")])
            .unwrap()
            .with_owners(HashMap::from([(
                "b.test".to_string(),
                Name::new("tenant", "other").unwrap(),
            )]));
        assert!(owned.find(Some("B.test:80"), "/c").is_none());
        assert!(owned.find(Some("c.test"), "/c").is_some());

        let only_hosted = RouteTable::new(vec![bare(Some("a.test"), "/a", "a")]).unwrap();
        assert!(only_hosted.find(Some("a.test"), "/b").is_none());
        assert!(only_hosted.find(None, "/a").is_none());
        assert!(RouteTable::empty().find(None, "/").is_none());
    }

    #[test]
    fn bad_tables_are_refused_naming_the_field() {
        let e = RouteTable::new(vec![bare(None, "/a", "a"), bare(None, "/a/", "b")]).unwrap_err();
        assert_eq!((e.index, e.field), (1, "prefix"));
        assert!(e.to_string().contains("route 0 has it already"), "{e}");
        let e = RouteTable::new(vec![bare(None, "nope", "a")]).unwrap_err();
        assert_eq!(e.field, "prefix");
        let e = RouteTable::new(vec![bare(Some("a.test:80"), "/", "a")]).unwrap_err();
        assert_eq!(e.field, "host");
        let mut r = bare(None, "/", "a");
        r.limits.max_concurrency = 0;
        assert_eq!(
            RouteTable::new(vec![r]).unwrap_err().field,
            "limits.max_concurrency"
        );
        let mut r = bare(None, "/", "a");
        r.limits.timeout = Duration::ZERO;
        assert_eq!(
            RouteTable::new(vec![r]).unwrap_err().field,
            "limits.timeout"
        );
    }

    #[test]
    fn ports_are_dropped_from_hosts() {
        assert_eq!(host_without_port("example.com:8080"), "example.com");
        assert_eq!(host_without_port("example.com"), "example.com");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
        assert_eq!(host_without_port("127.0.0.1:3000"), "127.0.0.1");
    }

    #[test]
    fn pick_follows_weights_and_never_picks_zero() {
        let weights = [90, 10, 0];
        let mut counts = [0u32; 3];
        for i in 0..10_000u32 {
            let h = key_hash(format!("key-{i}").as_bytes());
            counts[pick(&weights, h).unwrap()] += 1;
        }
        assert_eq!(counts[2], 0);
        assert!((8_700..=9_300).contains(&counts[0]), "{counts:?}");
        assert_eq!(
            pick(&weights, key_hash(b"k")),
            pick(&weights, key_hash(b"k"))
        );
        assert_eq!(pick(&[], 7), None);
        assert_eq!(pick(&[u32::MAX, u32::MAX], u64::MAX), Some(1));
    }

    #[test]
    fn key_hash_is_stable() {
        // Fixed values: the same key must reach the same version on every
        // node and after every upgrade.
        assert_eq!(key_hash(b""), key_hash(b""));
        assert_ne!(key_hash(b"a"), key_hash(b"b"));
        assert_eq!(key_hash(b"user-42"), 0x7a15_96f0_e94b_5793);
    }
}
