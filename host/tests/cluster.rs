//! `weft run --cluster` as a user runs it: weft processes on one machine joined by
//! a real nats-server on loopback (`weft_tests::nats`). A node killed (SIGKILL) or
//! hung (SIGSTOP) is declared down within the node timeout, and the ends that ran
//! over it fail with `disconnected`, never a quiet close; a hung node that comes
//! back finds its old leases refused. And the errors of a bad setup: exit 2 with a
//! message that says what to do.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use weft_tests::guest;
use weft_tests::nats::NatsServer;

mod common;
use common::{error_exit, finish, next_line, signal, text, weft, weft_cmd, weft_on_cluster};

/// `weft run --cluster URL --node NAME --node-timeout 1s FLAGS cluster.wasm ARGS`.
fn node(server: &NatsServer, name: &str, flags: &[&str], args: &[&str]) -> Child {
    weft_on_cluster(server, "run", name, flags, &guest("cluster"), args)
}

#[test]
fn a_killed_producer_node_fails_the_receiver_with_disconnected_after_it_drained() {
    let server = NatsServer::start();
    let mut consumer = node(&server, "a", &["--export-receiver", "jobs=8"], &["consume"]);
    let mut out = BufReader::new(consumer.stdout.take().unwrap());
    let mut producer = node(
        &server,
        "b",
        &["--import-sender", "jobs"],
        &["produce", "1", "100000000"],
    );
    assert_eq!(next_line(&mut out), "receiving from 1");
    producer.kill().expect("SIGKILL the producer's node");
    producer.wait().expect("reap it");
    let (code, rest, err) = finish(consumer, out);
    assert_eq!(code, Some(0), "{rest}{err}");
    let last = rest.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("failed Disconnected: the link to node b.") && last.contains("no heartbeat for"),
        "{rest}{err}"
    );
}

#[test]
fn a_killed_home_node_fails_the_remote_senders_send_with_the_value_back() {
    let server = NatsServer::start();
    let mut consumer = node(&server, "a", &["--export-receiver", "jobs=8"], &["consume"]);
    let mut out = BufReader::new(consumer.stdout.take().unwrap());
    let mut producer = node(
        &server,
        "b",
        &["--import-sender", "jobs"],
        &["produce", "1", "100000000"],
    );
    let p_out = BufReader::new(producer.stdout.take().unwrap());
    assert_eq!(next_line(&mut out), "receiving from 1");
    consumer.kill().expect("SIGKILL the home node");
    consumer.wait().expect("reap it");
    let (code, _, err) = finish(producer, p_out);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("not sent: the channel's remote end is disconnected: the link to node a."),
        "{err}"
    );
}

#[test]
fn a_hung_node_is_declared_down_and_when_it_resumes_its_old_leases_are_refused() {
    let server = NatsServer::start();
    // The consumer's node says what it decides about the others on stderr.
    let file = guest("cluster");
    let mut consumer = weft_cmd()
        .env("WEFT_LOG", "weft=warn")
        .args([
            "run",
            "--cluster",
            &server.url(),
            "--node",
            "a",
            "--node-timeout",
            "1s",
        ])
        .args(["--export-receiver", "jobs=8"])
        .arg(&file)
        .arg("consume")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start weft");
    let mut out = BufReader::new(consumer.stdout.take().unwrap());
    let (said_tx, said) = std::sync::mpsc::channel::<String>();
    let log = BufReader::new(consumer.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        for line in log.lines().map_while(Result::ok) {
            let _test_gone = said_tx.send(line);
        }
    });
    let wait_for = |what: &str| -> String {
        loop {
            let line = said
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("the consumer's node never said {what:?}: {e}"));
            if line.contains(what) {
                return line;
            }
        }
    };
    let mut hung = node(
        &server,
        "b",
        &["--import-sender", "jobs"],
        &["produce", "1", "100000000"],
    );
    let hung_out = BufReader::new(hung.stdout.take().unwrap());
    let mut other = node(
        &server,
        "c",
        &["--import-sender", "jobs"],
        &["produce", "2", "100000000"],
    );
    // Both producers are sending.
    let mut first = [next_line(&mut out), next_line(&mut out)];
    first.sort();
    assert_eq!(first, ["receiving from 1", "receiving from 2"]);
    signal(&hung, libc::SIGSTOP);
    let down = wait_for("a node of the cluster is down");
    assert!(down.contains("b.") && down.contains("no heartbeat for"), "{down}");
    signal(&hung, libc::SIGCONT);
    // Back, it is a stranger: told so when it speaks again, it fails its lease, and
    // its next send fails with its value instead of going nowhere.
    let refused = wait_for("spoke again");
    assert!(refused.contains("its old leases are refused"), "{refused}");
    let (code, _, err) = finish(hung, hung_out);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("the channel's remote end is disconnected"), "{err}");
    // The other producer is still served; once it is gone too, the consumer's
    // channel ends with the failure of a producer that was lost.
    other.kill().expect("SIGKILL the other producer");
    other.wait().expect("reap it");
    let (code, rest, _) = finish(consumer, out);
    reader.join().expect("the log reader");
    assert_eq!(code, Some(0), "{rest}");
    assert!(rest.contains("failed Disconnected: the link to node "), "{rest}");
}

#[test]
fn a_bad_cluster_setup_is_a_clear_error_with_exit_code_2() {
    let file = guest("cluster");
    let file = file.to_str().unwrap();
    // Nobody listens there.
    let mut gone = NatsServer::start();
    let url = gone.url();
    gone.kill();
    let err = error_exit(&weft(&["run", "--cluster", &url, file, "nodes", "1"]), 2);
    assert!(
        err.contains("cannot join the cluster at nats://127.0.0.1:"),
        "{err}"
    );
    assert!(err.contains("is a NATS server running there?"), "{err}");
    // Wrong credentials.
    let guarded = NatsServer::with_user("app", "secret");
    let bad = guarded.url().replace("nats://", "nats://app:wrong@");
    let err = error_exit(&weft(&["run", "--cluster", &bad, file, "nodes", "1"]), 2);
    assert!(err.contains("refused the credentials"), "{err}");
    // One message, and no password in it.
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("wrong"), "{err}");
    let good = guarded.url().replace("nats://", "nats://app:secret@");
    let o = weft(&["run", "--cluster", &good, "--node", "solo", file, "nodes", "1"]);
    assert_eq!(text(&o.stdout), "me: solo\nnodes: solo\n", "{}", text(&o.stderr));
    // A name no node exports.
    let server = NatsServer::start();
    let url = server.url();
    let err = error_exit(
        &weft(&[
            "run",
            "--cluster",
            &url,
            "--import-timeout",
            "300ms",
            "--import-sender",
            "jobs",
            file,
            "consume",
        ]),
        2,
    );
    assert!(
        err.contains("no node of cluster \"default\" exports \"jobs\""),
        "{err}"
    );
    // A capacity is a whole number; names are subject tokens.
    let err = error_exit(
        &weft(&[
            "run",
            "--cluster",
            &url,
            "--export-sender",
            "jobs=many",
            file,
            "consume",
        ]),
        1,
    );
    assert!(
        err.contains("the capacity \"many\" is not a whole number"),
        "{err}"
    );
    let err = error_exit(
        &weft(&[
            "run",
            "--cluster",
            &url,
            "--export-receiver",
            "no.dots",
            file,
            "consume",
        ]),
        2,
    );
    assert!(
        err.contains("the exported name \"no.dots\" is not valid"),
        "{err}"
    );
    let err = error_exit(
        &weft(&["run", "--cluster", &url, "--node", "a.b", file, "consume"]),
        2,
    );
    assert!(err.contains("the node name \"a.b\" is not valid"), "{err}");
    // A deterministic run refuses a cluster.
    let err = error_exit(
        &weft(&["run", "--seed", "1", "--cluster", &url, file, "consume"]),
        1,
    );
    assert!(err.contains("a deterministic run cannot join a cluster"), "{err}");
    // Export flags need --cluster.
    let o = weft(&["run", "--export-receiver", "jobs", file, "consume"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("--cluster"), "{}", text(&o.stderr));
}

#[test]
fn the_pipeline_example_runs_on_four_nodes_and_every_job_comes_back_once() {
    let server = NatsServer::start();
    let file = guest("cluster-pipeline");
    let run = |name: &str, flags: &[&str], args: &[&str]| -> Child {
        weft_cmd()
            .args(["run", "--cluster", &server.url(), "--node", name])
            .args(flags)
            .arg(&file)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start weft")
    };
    let collector = run(
        "collector",
        &["--export-receiver", "results=32"],
        &["collector", "120"],
    );
    let workers: Vec<Child> = ["worker-a", "worker-b"]
        .iter()
        .map(|w| {
            run(
                w,
                &["--import-sender", "results", "--import-receiver", "jobs"],
                &["worker"],
            )
        })
        .collect();
    let producer = run("producer", &["--export-sender", "jobs=32"], &["producer", "120"]);
    let mut done = 0;
    for mut child in [producer].into_iter().chain(workers) {
        let out = BufReader::new(child.stdout.take().unwrap());
        let (code, rest, err) = finish(child, out);
        assert_eq!(code, Some(0), "{rest}{err}");
        if let Some(n) = rest.lines().find_map(|l| {
            l.split_once(": did ")
                .map(|(_, n)| n.trim_end_matches(" jobs").to_string())
        }) {
            done += n.parse::<u32>().unwrap();
        }
    }
    assert_eq!(done, 120, "the workers did every job between them");
    let mut collector = collector;
    let out = BufReader::new(collector.stdout.take().unwrap());
    let (code, rest, err) = finish(collector, out);
    assert_eq!(code, Some(0), "{rest}{err}");
    assert!(rest.contains(": 120 of 120 jobs came back, each once"), "{rest}");
}
