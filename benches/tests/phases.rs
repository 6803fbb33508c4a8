//! The goal table's spawn breakdown hears weft's phase events, in order.

#[test]
fn a_spawns_phases_are_timed() {
    let rt = weft::Runtime::builder()
        .cache_dir(Some(weft_tests::cache_dir()))
        .workers(1)
        .build()
        .unwrap();
    let p = weft_benches::spawn_phases(&rt, 200).expect("weft emits its phase events");
    // Every phase was seen for the spawned microthreads (no times are compared).
    assert!(p.instantiate > 0.0 && p.run > 0.0 && p.drop > 0.0, "{p:?}");
}
