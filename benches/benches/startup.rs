//! Start-up of `weft run` on a real third-party program (ripgrep, built from
//! crates.io for wasm32-wasip2): `--version` and a small search, cold (compiling)
//! and cached, beside `wasmtime run` of the same wasmtime version when one is found
//! (`$WASMTIME`, or `wasmtime` on the PATH; `cargo install wasmtime-cli@48.0.8`).
//!
//! Whole processes are timed, as a user meets them. The `weft` binary is the one
//! `cargo build --release -p weft` makes (`$WEFT_BIN` to use another).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::Criterion;

fn weft_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WEFT_BIN") {
        return Some(PathBuf::from(p));
    }
    // target/release/deps/startup-… → target/release/weft
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.parent()?.join("weft");
    candidate.exists().then_some(candidate)
}

fn wasmtime_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WASMTIME") {
        return Some(PathBuf::from(p));
    }
    let found = Command::new("wasmtime").arg("--version").output().ok()?;
    found.status.success().then(|| PathBuf::from("wasmtime"))
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("start the process");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    for i in 0..50 {
        let text: String = (0..100)
            .map(|l| {
                format!(
                    "line {l} of file {i}{}\n",
                    if l % 17 == 0 { " needle" } else { "" }
                )
            })
            .collect();
        std::fs::write(dir.join("sub").join(format!("f{i}.txt")), text).unwrap();
    }
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(5))
        .sample_size(20);
    let rg = weft_tests::ripgrep();
    let rg = rg.to_str().unwrap();
    let work = std::env::temp_dir().join(format!("weft-startup-{}", std::process::id()));
    let data = work.join("data");
    tree(&data);
    let cache = work.join("cache");
    let grant = format!("{}::/data", data.display());

    let mut g = c.benchmark_group("startup");
    match weft_bin() {
        Some(weft) => {
            let weft_cmd = |args: &[&str]| {
                let mut cmd = Command::new(&weft);
                cmd.env("WEFT_CACHE_DIR", &cache).args(args);
                cmd
            };
            // Warm the cache.
            run_ok(&mut weft_cmd(&["run", rg, "--", "--version"]));
            g.bench_function("weft run rg --version (cached)", |b| {
                b.iter(|| run_ok(&mut weft_cmd(&["run", rg, "--", "--version"])))
            });
            g.bench_function("weft run rg needle (cached, 50 files)", |b| {
                b.iter(|| {
                    run_ok(&mut weft_cmd(&[
                        "run", "--dir-ro", &grant, rg, "--", "-c", "needle", "/data",
                    ]))
                })
            });
            g.bench_function("weft run rg --version (cold: --no-cache)", |b| {
                b.iter(|| run_ok(&mut weft_cmd(&["run", "--no-cache", rg, "--", "--version"])))
            });
        }
        None => eprintln!("startup: no weft binary: `cargo build --release -p weft` first, or set WEFT_BIN"),
    }
    match wasmtime_bin() {
        Some(wasmtime) => {
            let wt = |args: &[&str]| {
                let mut cmd = Command::new(&wasmtime);
                cmd.args(args);
                cmd
            };
            run_ok(&mut wt(&["run", "-C", "cache=y", rg, "--version"]));
            g.bench_function("wasmtime run rg --version (cached)", |b| {
                b.iter(|| run_ok(&mut wt(&["run", "-C", "cache=y", rg, "--version"])))
            });
            let dir = format!("{}::/data", data.display());
            g.bench_function("wasmtime run rg needle (cached, 50 files)", |b| {
                b.iter(|| {
                    run_ok(&mut wt(&[
                        "run", "-C", "cache=y", "--dir", &dir, rg, "-c", "needle", "/data",
                    ]))
                })
            });
            g.bench_function("wasmtime run rg --version (cold: cache=n)", |b| {
                b.iter(|| run_ok(&mut wt(&["run", "-C", "cache=n", rg, "--version"])))
            });
        }
        None => eprintln!("startup: no wasmtime found: set WASMTIME or put wasmtime on the PATH"),
    }
    g.finish();
    c.final_summary();
    let _ = std::fs::remove_dir_all(&work);
}
