//! The Redis Streams mailbox against a real Redis: round trip and acknowledgement, delivery to
//! a supervised actor, a consumer dying mid-handling (and a live one renewing its claim),
//! poison and unreadable entries going to the dead-letter stream while the stream keeps
//! flowing, trimming that never drops what a group still needs, Redis unreachable, and Redis
//! restarted mid-flow with AOF on.
//!
//! The server is `ARTEL_TEST_REDIS_URL` (`.ci/services.sh` exports it), else
//! redis://127.0.0.1:63790. Every test uses its own stream names, so tests run in parallel;
//! the restart test starts its own `redis-server`.

use artel_messages::{Classify, Envelope, ErrorClass, Failure, Payload};
use artel_supervisors::stream_mailbox::GroupStart;
use artel_supervisors::{
    Actor, Backoff, ChildSpec, Context, EntryId, Handler, Inbound, Intensity, StreamClient,
    StreamConfig, StreamError, Supervisor,
};
use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Job {
    n: u32,
}

impl Payload for Job {
    const KIND: &'static str = "TestJob";
    const SCHEMA_VERSION: u16 = 1;
}

fn job(n: u32) -> Envelope<Job> {
    Envelope::new(Job { n })
}

/// The shared test server's URL; fails the test when it does not answer.
async fn redis_url() -> String {
    let url = std::env::var("ARTEL_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:63790".to_owned());
    let answered = async {
        let client = redis::Client::open(url.as_str()).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    match tokio::time::timeout(Duration::from_secs(3), answered).await {
        Ok(Some(_)) => url,
        _ => panic!(
            "no Redis answers at {url}: run `. .ci/services.sh` (it starts one and exports \
             ARTEL_TEST_REDIS_URL), or point ARTEL_TEST_REDIS_URL at a Redis 7"
        ),
    }
}

/// A stream name of this test's own (never in the `artel.` namespace).
fn unique_stream(what: &str) -> String {
    format!("test-{}.{what}", uuid::Uuid::new_v4().simple())
}

/// Quick claims so that the tests take seconds. Generous connect and response timeouts: on a
/// loaded 2-core CI machine a 500 ms connect timed out and ended a consumer mid-test.
fn fast_config() -> StreamConfig {
    StreamConfig {
        connect_timeout: Duration::from_secs(5),
        response_timeout: Duration::from_secs(5),
        block: Duration::from_millis(100),
        max_len: None,
        ..StreamConfig::default()
    }
    // Long enough that a test process starved of CPU on a loaded CI machine does not look dead.
    .with_claim_after(Duration::from_millis(1500))
}

async fn raw(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn stream_ids(conn: &mut MultiplexedConnection, stream: &str) -> Vec<EntryId> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .unwrap();
    reply.ids.iter().map(|e| e.id.parse().unwrap()).collect()
}

/// Polls `check` until it holds or `within` passes.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Aborts a spawned consumer run when the test ends, however it ends.
struct Running(tokio::task::JoinHandle<()>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn spawn_run<H>(consumer: artel_supervisors::StreamConsumer<Job>, handler: H) -> Running
where
    H: artel_supervisors::StreamHandler<Job>,
{
    Running(tokio::spawn(async move {
        let Err(err) = consumer.run(&handler).await;
        panic!("consumer run ended: {err}");
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_send_handle_ack() {
    let url = redis_url().await;
    let stream = unique_stream("work");
    let client = StreamClient::new(&url, fast_config()).unwrap();
    let producer = client.producer::<Job>(&stream);
    let consumer = client.consumer::<Job>(&stream, "role", "instance-1");

    let sent = [job(1), job(2), job(3)];
    // Sent before the consumer ever ran: the group starts at the beginning, so none is missed.
    let mut ids = Vec::new();
    for envelope in &sent {
        ids.push(producer.send(envelope).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids rise: {ids:?}");

    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let _run = spawn_run(consumer, move |envelope: Envelope<Job>| {
        let record = record.clone();
        async move {
            record.lock().push(envelope);
            Ok(())
        }
    });

    eventually(Duration::from_secs(10), "three envelopes handled", || {
        let n = seen.lock().len();
        async move { n == 3 }
    })
    .await;
    assert_eq!(
        *seen.lock(),
        sent,
        "the same envelopes, in order, once each"
    );
    eventually(Duration::from_secs(5), "nothing pending", || async {
        client.pending(&stream, "role").await.unwrap() == 0
    })
    .await;
    // Acknowledged, not deleted: without max_len nothing is trimmed.
    let mut conn = raw(&url).await;
    assert_eq!(stream_ids(&mut conn, &stream).await, ids);
    assert!(client.dead_letters(&stream, 10).await.unwrap().is_empty());
}

/// A supervised actor that handles stream envelopes.
struct Collector {
    seen: Arc<Mutex<Vec<u32>>>,
}

impl Actor for Collector {}

impl Handler<Inbound<Job>> for Collector {
    async fn handle(&mut self, msg: Inbound<Job>, _ctx: &mut Context<Self>) -> Result<(), Failure> {
        self.seen.lock().push(msg.0.payload.n);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_to_a_supervised_actor_through_its_addr() {
    let url = redis_url().await;
    let stream = unique_stream("work");
    let client = StreamClient::new(&url, fast_config()).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let for_actor = seen.clone();
    let (addr, spec) = ChildSpec::actor("collector", move || Collector {
        seen: for_actor.clone(),
    });
    let root = Supervisor::new("actor-root").child(spec).start().await;
    let _run = spawn_run(client.consumer::<Job>(&stream, "role", "i1"), addr);

    let producer = client.producer::<Job>(&stream);
    for n in 1..=4 {
        producer.send(&job(n)).await.unwrap();
    }
    eventually(Duration::from_secs(10), "four handled by the actor", || {
        let n = seen.lock().len();
        async move { n == 4 }
    })
    .await;
    assert_eq!(*seen.lock(), [1, 2, 3, 4]);
    eventually(Duration::from_secs(5), "nothing pending", || async {
        client.pending(&stream, "role").await.unwrap() == 0
    })
    .await;
    root.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_consumers_entry_is_claimed_and_handled_once_while_a_live_one_keeps_its_claim() {
    let url = redis_url().await;
    let stream = unique_stream("work");
    let config = fast_config();
    let claim_after = config.claim_after;
    let client = StreamClient::new(&url, config).unwrap();

    // Consumer A takes the entry and then hangs in its handler (renewing its claim) until it
    // "dies": its task is aborted with the entry unacknowledged.
    let a_started = Arc::new(Notify::new());
    let a_calls = Arc::new(AtomicUsize::new(0));
    let (started, calls) = (a_started.clone(), a_calls.clone());
    let a = spawn_run(
        client.consumer::<Job>(&stream, "role", "instance-a"),
        move |_envelope: Envelope<Job>| {
            let (started, calls) = (started.clone(), calls.clone());
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                started.notify_one();
                std::future::pending::<()>().await;
                Ok(())
            }
        },
    );
    client.producer::<Job>(&stream).send(&job(7)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), a_started.notified())
        .await
        .expect("consumer A got the entry");

    // Consumer B sweeps for idle entries all along, and counts committed effects.
    let effects = Arc::new(Mutex::new(Vec::new()));
    let record = effects.clone();
    let _b = spawn_run(
        client.consumer::<Job>(&stream, "role", "instance-b"),
        move |envelope: Envelope<Job>| {
            let record = record.clone();
            async move {
                record.lock().push(envelope.payload.n);
                Ok(())
            }
        },
    );

    // A is slow but alive: it renews, so B must not take the entry away.
    tokio::time::sleep(claim_after * 4).await;
    assert!(
        effects.lock().is_empty(),
        "a live consumer's renewed entry was claimed"
    );
    assert_eq!(client.pending(&stream, "role").await.unwrap(), 1);

    drop(a); // A dies without XACK.
    eventually(Duration::from_secs(10), "B handled the orphan", || {
        let n = effects.lock().len();
        async move { n == 1 }
    })
    .await;
    eventually(Duration::from_secs(5), "nothing pending", || async {
        client.pending(&stream, "role").await.unwrap() == 0
    })
    .await;
    tokio::time::sleep(claim_after * 3).await;
    assert_eq!(*effects.lock(), [7], "handled exactly once by B");
    assert_eq!(a_calls.load(Ordering::SeqCst), 1, "A saw it once");
    assert!(client.dead_letters(&stream, 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_and_unreadable_entries_go_to_the_dead_letter_stream_and_the_stream_flows_on() {
    let url = redis_url().await;
    let stream = unique_stream("work");
    let config = StreamConfig {
        max_deliveries: 3,
        ..fast_config()
    };
    let client = StreamClient::new(&url, config).unwrap();
    let producer = client.producer::<Job>(&stream);

    let attempts = Arc::new(Mutex::new(Vec::new()));
    let record = attempts.clone();
    let _run = spawn_run(
        client.consumer::<Job>(&stream, "role", "i1"),
        move |envelope: Envelope<Job>| {
            let record = record.clone();
            async move {
                let n = envelope.payload.n;
                record.lock().push(n);
                match n {
                    0 => Err(Failure::retryable("cannot digest 0")),
                    99 => Err(Failure::fatal("99 is not a job")),
                    _ => Ok(()),
                }
            }
        },
    );

    let poison = job(0);
    let poison_id = producer.send(&poison).await.unwrap();
    producer.send(&job(1)).await.unwrap();
    let fatal_id = producer.send(&job(99)).await.unwrap();
    let mut conn = raw(&url).await;
    let garbage_id: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("envelope")
        .arg("{not json")
        .query_async(&mut conn)
        .await
        .unwrap();
    let fieldless_id: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("something")
        .arg("else")
        .query_async(&mut conn)
        .await
        .unwrap();
    producer.send(&job(2)).await.unwrap();

    eventually(Duration::from_secs(15), "four dead letters", || async {
        client.dead_letters(&stream, 10).await.unwrap().len() == 4
    })
    .await;
    // The stream still flows after the poison.
    producer.send(&job(3)).await.unwrap();
    eventually(Duration::from_secs(10), "3 handled", || {
        let done = attempts.lock().contains(&3);
        async move { done }
    })
    .await;
    eventually(Duration::from_secs(5), "nothing pending", || async {
        client.pending(&stream, "role").await.unwrap() == 0
    })
    .await;

    let attempts = attempts.lock().clone();
    let count = |n: u32| attempts.iter().filter(|&&a| a == n).count();
    assert_eq!(count(0), 3, "the poison was delivered max_deliveries times");
    assert_eq!(count(99), 1, "a fatal failure is not retried");
    assert_eq!((count(1), count(2), count(3)), (1, 1, 1));

    let dead = client.dead_letters(&stream, 10).await.unwrap();
    let by_source = |id: &str| {
        dead.iter()
            .find(|d| d.source_id == id)
            .unwrap_or_else(|| panic!("no dead letter for {id}: {dead:#?}"))
    };
    let d = by_source(&poison_id.to_string());
    assert_eq!(d.deliveries, 3);
    assert_eq!(d.failure, Failure::retryable("cannot digest 0"));
    assert_eq!(d.decode::<Job>().unwrap(), poison);
    assert_eq!(
        (
            d.source_stream.as_str(),
            d.group.as_str(),
            d.consumer.as_str()
        ),
        (stream.as_str(), "role", "i1")
    );
    assert!(d.dead_at.is_some());
    let d = by_source(&fatal_id.to_string());
    assert_eq!((d.deliveries, d.failure.class), (1, ErrorClass::Fatal));
    assert_eq!(d.failure.reason, "99 is not a job");
    let d = by_source(&garbage_id);
    assert_eq!(d.failure.class, ErrorClass::Fatal);
    assert!(d.failure.reason.contains("malformed envelope"), "{d:?}");
    assert_eq!(d.envelope, b"{not json");
    let d = by_source(&fieldless_id);
    assert!(d.failure.reason.contains("no `envelope` field"), "{d:?}");
    // The dead-letter stream is named after its stream.
    let dead_len: usize = redis::cmd("XLEN")
        .arg(StreamClient::dead_letter_stream(&stream))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(dead_len, 4);
    assert!(StreamClient::dead_letter_stream(&stream).ends_with(".work.dead"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimming_never_drops_pending_or_undelivered_entries() {
    let url = redis_url().await;
    let stream = unique_stream("work");
    let config = StreamConfig {
        max_len: Some(2),
        trim_every: 1,
        ..fast_config()
    };
    let client = StreamClient::new(&url, config).unwrap();
    let producer = client.producer::<Job>(&stream);
    let mut conn = raw(&url).await;

    // No group yet: nobody has read anything, so nothing is trimmed however long it gets.
    let mut ids = Vec::new();
    for n in 1..=4 {
        ids.push(producer.send(&job(n)).await.unwrap());
    }
    assert_eq!(producer.trim().await.unwrap(), None);
    assert_eq!(stream_ids(&mut conn, &stream).await, ids);

    // A group that has delivered nothing yet: still nothing goes.
    client
        .consumer::<Job>(&stream, "role", "i1")
        .ensure_group()
        .await
        .unwrap();
    producer.trim().await.unwrap();
    assert_eq!(stream_ids(&mut conn, &stream).await, ids);

    // Deliver 1..=3, acknowledge 1 and 3; 2 stays pending, 4 undelivered.
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("role")
        .arg("i1")
        .arg("COUNT")
        .arg(3)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    let ack = |id: EntryId| {
        redis::cmd("XACK")
            .arg(&stream)
            .arg("role")
            .arg(id.to_string())
            .clone()
    };
    let _: usize = ack(ids[0]).query_async(&mut conn).await.unwrap();
    let _: usize = ack(ids[2]).query_async(&mut conn).await.unwrap();
    assert_eq!(producer.trim().await.unwrap(), Some(ids[1]));
    assert_eq!(stream_ids(&mut conn, &stream).await, ids[1..]);

    // A second group that has read nothing holds everything for itself.
    let other = client.consumer::<Job>(&stream, "other-role", "i1");
    other.ensure_group().await.unwrap();
    let _: usize = ack(ids[1]).query_async(&mut conn).await.unwrap();
    producer.trim().await.unwrap();
    assert_eq!(stream_ids(&mut conn, &stream).await, ids[1..]);
    let _: () = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(&stream)
        .arg("other-role")
        .query_async(&mut conn)
        .await
        .unwrap();

    // 2 acknowledged: everything through 3 goes on the next send's trim; 4 and 5 stay.
    let fifth = producer.send(&job(5)).await.unwrap();
    assert_eq!(stream_ids(&mut conn, &stream).await, [ids[3], fifth]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_is_a_fast_retryable_error() {
    // A port nobody listens on.
    let port = free_port();
    let client = StreamClient::new(&format!("redis://127.0.0.1:{port}"), fast_config()).unwrap();
    let producer = client.producer::<Job>("test-unreachable.work");
    // Bounded only so that a hang fails the test instead of stalling it.
    let err = tokio::time::timeout(Duration::from_secs(10), producer.send(&job(1)))
        .await
        .expect("send hung with Redis down")
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable, "{err:?}");
    assert!(matches!(err, StreamError::Unavailable(_)), "{err:?}");
    // Again: no silent success, no hang, the same class.
    let err = producer.send(&job(2)).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable);

    let consumer = client.consumer::<Job>("test-unreachable.work", "role", "i1");
    let handler = |_: Envelope<Job>| async { Ok(()) };
    let run = tokio::time::timeout(Duration::from_secs(10), consumer.run(&handler))
        .await
        .expect("consumer run hung with Redis down");
    let Err(err) = run;
    assert_eq!(err.class(), ErrorClass::Retryable, "{err:?}");

    // Configuration mistakes are fatal, not retryable.
    let err = StreamClient::new("not a url", fast_config()).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Fatal);
    let err = StreamClient::new(
        "redis://127.0.0.1:1",
        StreamConfig {
            renew_every: Duration::from_secs(120),
            ..StreamConfig::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, StreamError::InvalidConfig(_)), "{err:?}");
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A private `redis-server` with AOF (`appendfsync always`) in its own directory.
struct OwnRedis {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("artel-redis-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            dir,
            port: free_port(),
            child: None,
        };
        server.boot().await;
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn boot(&mut self) {
        let binary = ["/usr/bin/redis-server", "redis-server"]
            .into_iter()
            .find(|b| !b.starts_with('/') || std::path::Path::new(b).exists())
            .unwrap();
        let child = Command::new(binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (install it, or run `. .ci/services.sh`)");
        self.child = Some(child);
        let url = self.url();
        eventually(Duration::from_secs(10), "own redis-server answers", || {
            let url = url.clone();
            async move {
                let Ok(client) = redis::Client::open(url.as_str()) else {
                    return false;
                };
                let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                    return false;
                };
                redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            }
        })
        .await;
    }

    /// SIGTERM and wait for the exit.
    fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            child.wait().unwrap();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restarted_mid_flow_loses_no_appended_entry_and_the_consumer_carries_on() {
    let mut server = OwnRedis::start().await;
    let url = server.url();
    let stream = unique_stream("work");
    let config = StreamConfig {
        batch: 1,
        group_start: GroupStart::Beginning,
        ..fast_config()
    };
    let client = StreamClient::new(&url, config).unwrap();
    let producer = client.producer::<Job>(&stream);

    // The handler commits its effect into a set (idempotent, as handlers must be), and hangs
    // on entry 6 the first time, so 6 stays unacknowledged and 7.. undelivered across the
    // restart.
    let handled = Arc::new(Mutex::new(BTreeSet::new()));
    let gate = Arc::new(Notify::new());
    let in_six = Arc::new(Notify::new());
    let six_seen = Arc::new(AtomicUsize::new(0));
    let handler = {
        let (handled, gate, in_six, six_seen) = (
            handled.clone(),
            gate.clone(),
            in_six.clone(),
            six_seen.clone(),
        );
        move |envelope: Envelope<Job>| {
            let (handled, gate, in_six, six_seen) = (
                handled.clone(),
                gate.clone(),
                in_six.clone(),
                six_seen.clone(),
            );
            async move {
                let n = envelope.payload.n;
                if n == 6 && six_seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    in_six.notify_one();
                    gate.notified().await;
                }
                handled.lock().insert(n);
                Ok(())
            }
        }
    };
    // Supervised: a run that Redis fails is restarted under the child spec — that is the
    // reconnect.
    let spec = client
        .consumer::<Job>(&stream, "role", "instance-1")
        .child_spec("consumer", handler)
        .backoff(Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(300),
            ..Backoff::default()
        });
    let root = Supervisor::new("restart-root")
        .intensity(Intensity {
            max_restarts: 1000,
            within: Duration::from_secs(60),
        })
        .child(spec)
        .start()
        .await;

    let mut appended = Vec::new();
    for n in 1..=5 {
        appended.push(producer.send(&job(n)).await.unwrap());
    }
    eventually(Duration::from_secs(10), "1..=5 handled", || {
        let n = handled.lock().len();
        async move { n == 5 }
    })
    .await;
    eventually(Duration::from_secs(5), "1..=5 acknowledged", || async {
        client.pending(&stream, "role").await.unwrap() == 0
    })
    .await;
    appended.push(producer.send(&job(6)).await.unwrap());
    tokio::time::timeout(Duration::from_secs(10), in_six.notified())
        .await
        .expect("the consumer took 6");
    for n in 7..=10 {
        appended.push(producer.send(&job(n)).await.unwrap());
    }

    // Redis goes down with 1..=5 acknowledged, 6 pending and 7..=10 undelivered.
    server.terminate();
    let err = producer.send(&job(99)).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable, "{err:?}");
    // 6's handler finishes while Redis is away: its XACK fails, the run ends, and the
    // supervisor restarts it (again and again, with backoff, while Redis stays down).
    gate.notify_one();
    tokio::time::sleep(Duration::from_millis(800)).await;
    server.boot().await;

    // Every entry XADD returned an id for survived the restart, group state included.
    let mut conn = raw(&url).await;
    assert_eq!(stream_ids(&mut conn, &stream).await, appended);

    // The producer reconnects on its next send; the consumer's restarted run carries on:
    // 7..=10 are delivered and 6 is claimed again after claim_after.
    for n in 11..=12 {
        appended.push(producer.send(&job(n)).await.unwrap());
    }
    eventually(Duration::from_secs(20), "1..=12 handled", || {
        let done = handled.lock().len() == 12;
        async move { done }
    })
    .await;
    eventually(Duration::from_secs(10), "all acknowledged", || async {
        client.pending(&stream, "role").await.unwrap() == 0
    })
    .await;
    assert_eq!(
        *handled.lock(),
        (1..=12).collect::<BTreeSet<u32>>(),
        "every appended job handled"
    );
    assert!(
        six_seen.load(Ordering::SeqCst) >= 2,
        "6 was redelivered: its acknowledgement was lost with Redis"
    );
    assert_eq!(stream_ids(&mut conn, &stream).await, appended);
    assert!(client.dead_letters(&stream, 10).await.unwrap().is_empty());
    let tree = root.registry().snapshot();
    let restarts = tree
        .find("restart-root/consumer")
        .map_or(0, |node| node.restarts);
    assert!(restarts >= 1, "the consumer was restarted: {tree:?}");
    root.shutdown().await;
}
