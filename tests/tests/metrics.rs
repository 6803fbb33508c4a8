//! A runtime's metrics as an application reads them: weft's collector in the
//! application's own Prometheus registry, counting real guests' microthreads
//! across runs (failures by kind among them), and keeping the counts of runs that
//! have gone.

use std::collections::HashMap;

use weft::metrics::prometheus_client::registry::Registry;
use weft::{ExitStatus, FailureKind, RunOptions, Runtime};

mod common;
use common::start;

/// The registry's samples, `name{labels}` to value.
fn samples(registry: &Registry) -> HashMap<String, f64> {
    let mut text = String::new();
    weft::metrics::prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_string(), value.parse().unwrap())
        })
        .collect()
}

#[test]
fn an_applications_registry_counts_the_runs_microthreads_and_their_failures() {
    let rt = Runtime::builder()
        .workers(2)
        .cache_dir(Some(weft_tests::cache_dir()))
        .build()
        .unwrap();
    let mut registry = Registry::default();
    rt.metrics().register(&mut registry);
    let zero = samples(&registry);
    assert_eq!(zero["weft_microthreads_spawned_total"], 0.0);
    assert_eq!(zero["weft_runs_live"], 0.0);

    // A child traps; main joins it and carries on.
    let (run, out) = start(&rt, "failures", &["join-trap"], RunOptions::new());
    assert_eq!(run.wait(), ExitStatus::Exited(0), "{}", out.to_string_lossy());
    // A child traps and nobody joins it: main and the sibling are cancelled, main
    // fails as the trapper's parent.
    let (run, out) = start(&rt, "structure", &["unjoined-siblings"], RunOptions::new());
    let ExitStatus::Failed(f) = run.wait() else {
        panic!("{}", out.to_string_lossy())
    };
    assert_eq!(f.kind, FailureKind::ChildFailed);

    let m = samples(&registry);
    // 2 in the first run, 3 in the second (both gone once waited for).
    assert_eq!(m["weft_microthreads_spawned_total"], 5.0, "{m:?}");
    assert_eq!(m["weft_microthreads_finished_total"], 5.0, "{m:?}");
    assert_eq!(m["weft_microthreads_failed_total{kind=\"trap\"}"], 2.0, "{m:?}");
    assert_eq!(
        m["weft_microthreads_failed_total{kind=\"cancelled\"}"], 1.0,
        "{m:?}"
    );
    assert_eq!(
        m["weft_microthreads_failed_total{kind=\"child_failed\"}"], 1.0,
        "{m:?}"
    );
    assert_eq!(m["weft_microthreads_failed_total{kind=\"panic\"}"], 0.0, "{m:?}");
    assert_eq!(m["weft_microthread_lifetime_seconds_count"], 5.0, "{m:?}");
    assert_eq!(m["weft_runs_live"], 0.0, "{m:?}");
    assert_eq!(m["weft_microthreads_live{state=\"running\"}"], 0.0, "{m:?}");
    assert!(m["weft_fuel_consumed_total"] > 0.0, "{m:?}");

    // Another run: nothing counted is lost, nothing counted twice.
    let (run, _) = start(&rt, "failures", &["join-trap"], RunOptions::new());
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    let m = samples(&registry);
    assert_eq!(m["weft_microthreads_spawned_total"], 7.0, "{m:?}");
    assert_eq!(m["weft_microthreads_failed_total{kind=\"trap\"}"], 3.0, "{m:?}");
    // weft's metrics alone, the same numbers.
    assert!(
        rt.metrics()
            .encode()
            .contains("weft_microthreads_spawned_total 7\n")
    );

    // Messages: one in 64 each microthread sends has its latency measured.
    let (run, _) = start(&rt, "bench", &["pingpong", "1000"], RunOptions::new());
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    let m = samples(&registry);
    let sent = m["weft_messages_sent_total"];
    let sampled = m["weft_message_latency_seconds_count"];
    assert!(sent >= 2000.0, "{m:?}");
    assert!(
        (2.0..=sent / 64.0 + 3.0).contains(&sampled),
        "{sampled} of {sent}: {m:?}"
    );
    assert!(m["weft_message_latency_seconds_sum"] > 0.0, "{m:?}");
}
