//! Issue 16: SLOs stored before notification secrets were sealed (a
//! webhook URL, a PagerDuty routing key in plain in the state) are sealed
//! by the leader's reseal loop on a real founded node, without being
//! saved again: afterwards the state holds only redacted forms and the
//! seal, which opens to the very URL and key for that SLO. A second SLO
//! already sealed is left as it was.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::{ClusterNode, DataDir, StartOptions};
use replica::Timing;
use state::{Command, Name, NotifyKind, NotifyTarget, Objective, Slo};

const SLACK: &str = "https://hooks.slack.com/services/T000/B000/PLAINSECRET";
const PAGER: &str = "https://events.pagerduty.com/v2/enqueue";
const ROUTING_KEY: &str = "R0UTINGKEYPLAINSECRET";

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn name(s: &str) -> Name {
    Name::new("name", s).unwrap()
}

fn slo(app: &str, notify: Vec<NotifyTarget>) -> Slo {
    Slo {
        tenant: name("acme"),
        app: name(app),
        name: name("fast"),
        objective: Objective::Availability,
        target: 0.999,
        window_days: 28,
        notify,
        updated: state::Revision(0),
    }
}

async fn write(node: &ClusterNode, command: Command) {
    let what = format!("{command:?}");
    let r = node.write(command).await.expect("the write is answered");
    assert!(r.result.is_ok(), "{what}: {:?}", r.result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slos_stored_before_sealing_are_sealed_by_the_leader() {
    let tmp = tempfile::tempdir().unwrap();
    let options = StartOptions {
        region: "local".into(),
        peer_address: Some(free_port()),
        api_address: "127.0.0.1:1".into(),
        join: None,
        timing: Timing {
            heartbeat: Duration::from_millis(50),
            election: (Duration::from_millis(200), Duration::from_millis(400)),
            snapshot_every: 1000,
        },
        artifact_check: None,
        voter: true,
    };
    let (node, _) = ClusterNode::start(&DataDir::new(tmp.path().join("a")), options)
        .await
        .unwrap();
    let node: Arc<ClusterNode> = node;
    let deadline = Instant::now() + Duration::from_secs(120);
    while node.replica().status().leader != Some(node.id()) {
        assert!(Instant::now() < deadline, "the founded node never led");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    write(
        &node,
        Command::PutTenant {
            name: name("acme"),
            quotas: Default::default(),
        },
    )
    .await;
    for app in ["shop", "blog"] {
        write(
            &node,
            Command::CreateApp {
                tenant: name("acme"),
                name: name(app),
                route: format!("/{app}"),
                host: None,
            },
        )
        .await;
    }
    // As a node before sealing stored them: plain URL and key.
    let plain = vec![
        NotifyTarget {
            kind: NotifyKind::Slack,
            url: SLACK.into(),
            routing_key: None,
            sealed: None,
        },
        NotifyTarget {
            kind: NotifyKind::PagerDuty,
            url: PAGER.into(),
            routing_key: Some(ROUTING_KEY.into()),
            sealed: None,
        },
    ];
    write(
        &node,
        Command::PutSlo {
            slo: slo("shop", plain),
        },
    )
    .await;
    // Sealed already (as the API stores SLOs now): must stay as it is.
    let key = node.at_rest_key();
    let blog_context = ops::notify_guard::context(&name("acme"), &name("blog"), &name("fast"));
    let already = ops::notify_guard::sealed(
        &key,
        &blog_context,
        &NotifyTarget {
            kind: NotifyKind::Slack,
            url: SLACK.into(),
            routing_key: None,
            sealed: None,
        },
    )
    .unwrap();
    write(
        &node,
        Command::PutSlo {
            slo: slo("blog", vec![already.clone()]),
        },
    )
    .await;
    let blog_before = node
        .replica()
        .read_local()
        .slo(&name("acme"), &name("blog"), &name("fast"))
        .cloned()
        .unwrap();

    let task = tokio::spawn(controllers::reseal::run(node.clone()));
    let sealed = loop {
        let found = node
            .replica()
            .read_local()
            .slo(&name("acme"), &name("shop"), &name("fast"))
            .cloned()
            .unwrap();
        if found.notify.iter().all(|t| t.sealed.is_some()) {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "the SLO was never sealed: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    task.abort();

    let shown = serde_json::to_string(&sealed).unwrap();
    assert!(
        !shown.contains("PLAINSECRET"),
        "the state still holds a secret in plain: {shown}"
    );
    assert_eq!(sealed.notify[0].url, "https://hooks.slack.com/…");
    assert_eq!(sealed.notify[1].routing_key.as_deref(), Some("…CRET"));
    let context = ops::notify_guard::context(&name("acme"), &name("shop"), &name("fast"));
    let opened: Vec<_> = sealed
        .notify
        .iter()
        .map(|t| {
            ops::notify_guard::open_target(&key, &context, t.sealed.as_ref().unwrap()).unwrap()
        })
        .collect();
    assert_eq!(opened[0].url, SLACK);
    assert_eq!(opened[1].url, PAGER);
    assert_eq!(opened[1].routing_key.as_deref(), Some(ROUTING_KEY));
    // The rest of the SLO is kept, and the sealed one untouched.
    assert_eq!((sealed.target, sealed.window_days), (0.999, 28));
    let blog_after = node
        .replica()
        .read_local()
        .slo(&name("acme"), &name("blog"), &name("fast"))
        .cloned()
        .unwrap();
    assert_eq!(blog_after, blog_before);
}
