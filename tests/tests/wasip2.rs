//! Real wasip2 programs under weft: a third-party command (ripgrep, built from
//! crates.io) over granted directories, file system grants, stdin, and the
//! compilation cache and precompiled files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use weft::{CacheStatus, Error, ExitStatus, OutputBuffer, RunOptions, Runtime, RuntimeBuilder};
use weft_tests::{guest, ripgrep};

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("weft-{tag}-{}-{}", std::process::id(), fastrand_u64()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

fn runtime(cache: &Path) -> RuntimeBuilder {
    Runtime::builder()
        .workers(1)
        .max_microthreads(16)
        .cache_dir(Some(cache.to_owned()))
}

fn run(program: &weft::Program, options: RunOptions) -> (ExitStatus, String) {
    let out = OutputBuffer::new();
    let status = program.run(&options.stdout(out.clone())).unwrap();
    (status, out.to_string_lossy())
}

/// A tree of text files, some lines containing "needle".
fn make_tree(root: &Path) {
    for d in 0..4 {
        let dir = root.join(format!("dir{d}")).join("deeper");
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..5 {
            let mut text = String::new();
            for line in 0..40 {
                if (d * 7 + f * 3 + line) % 11 == 0 {
                    text.push_str(&format!("line {line} has a needle in it\n"));
                } else {
                    text.push_str(&format!("line {line} is hay\n"));
                }
            }
            std::fs::write(dir.join(format!("file{f}.txt")), &text).unwrap();
            std::fs::write(
                root.join(format!("dir{d}")).join(format!("top{f}.txt")),
                text.replace("hay", "straw"),
            )
            .unwrap();
        }
    }
}

/// `path:line:text` for every line containing `pattern`, paths as the guest sees them.
fn expected_matches(root: &Path, guest_root: &str, pattern: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(root).unwrap().to_str().unwrap().to_owned();
            for (i, line) in std::fs::read_to_string(&path).unwrap().lines().enumerate() {
                if line.contains(pattern) {
                    out.insert(format!("{guest_root}/{rel}:{}:{line}", i + 1));
                }
            }
        }
    }
    out
}

#[test]
fn ripgrep_finds_what_a_native_scan_finds() {
    let tree = TempDir::new("tree");
    let cache = TempDir::new("cache");
    make_tree(&tree.0);
    let rt = runtime(&cache.0).build().unwrap();
    let rg = rt.load(ripgrep()).unwrap();
    assert!(!rg.is_spawnable(), "ripgrep knows nothing of weft");

    let (status, version) = run(&rg, RunOptions::new().program_name("rg").arg("--version"));
    assert_eq!(status, ExitStatus::Exited(0));
    assert!(version.starts_with("ripgrep 15."), "{version}");

    let options = RunOptions::new()
        .program_name("rg")
        .args([
            "--no-heading",
            "--with-filename",
            "--line-number",
            "--color=never",
            "needle",
            "/data",
        ])
        .dir_read_only(&tree.0, "/data");
    let (status, out) = run(&rg, options);
    assert_eq!(status, ExitStatus::Exited(0));
    let got: BTreeSet<String> = out.lines().map(str::to_owned).collect();
    let want = expected_matches(&tree.0, "/data", "needle");
    assert!(want.len() > 20, "the tree has matches");
    assert_eq!(got, want);
}

#[test]
fn paths_outside_every_grant_fail_inside_the_guest() {
    let tree = TempDir::new("tree");
    let cache = TempDir::new("cache");
    make_tree(&tree.0);
    let rt = runtime(&cache.0).build().unwrap();
    let rg = rt.load(ripgrep()).unwrap();
    let err = OutputBuffer::new();
    let host_path = tree.0.to_str().unwrap().to_owned();
    // The host path itself is not visible: only the grant's guest path is.
    let options = RunOptions::new()
        .args(["needle", &host_path])
        .dir(&tree.0, "/data")
        .stderr(err.clone());
    let (status, out) = run(&rg, options);
    assert_eq!(
        status,
        ExitStatus::Exited(1),
        "ripgrep's own error exit (WASI 0.2 carries 0 or 1)"
    );
    assert!(out.is_empty(), "{out}");
    assert!(
        err.to_string_lossy().contains("No such file or directory"),
        "{}",
        err.to_string_lossy()
    );
}

#[test]
fn a_read_only_grant_refuses_writes_and_a_read_write_grant_allows_them() {
    let dir = TempDir::new("grant");
    let cache = TempDir::new("cache");
    let rt = runtime(&cache.0).build().unwrap();
    let files = rt.load(guest("files")).unwrap();

    let (_, out) = run(
        &files,
        RunOptions::new()
            .args(["write", "/g/new.txt", "hello"])
            .dir_read_only(&dir.0, "/g"),
    );
    assert!(out.starts_with("error:"), "a read-only grant must refuse: {out}");
    assert!(!dir.0.join("new.txt").exists());

    let (_, out) = run(
        &files,
        RunOptions::new()
            .args(["write", "/g/new.txt", "hello"])
            .dir(&dir.0, "/g"),
    );
    assert_eq!(out.trim(), "wrote");
    assert_eq!(std::fs::read_to_string(dir.0.join("new.txt")).unwrap(), "hello");

    let (_, out) = run(
        &files,
        RunOptions::new()
            .args(["read", "/g/new.txt"])
            .dir_read_only(&dir.0, "/g"),
    );
    assert_eq!(out, "hello");
    // No grant, nothing visible.
    let (_, out) = run(&files, RunOptions::new().args(["read", "/g/new.txt"]));
    assert!(out.starts_with("error:"), "{out}");

    let e = files
        .run(&RunOptions::new().dir(dir.0.join("missing"), "/m"))
        .unwrap_err();
    assert!(matches!(e, Error::Grant { .. }), "{e}");
}

#[test]
fn stdin_reaches_the_guest() {
    let cache = TempDir::new("cache");
    let rt = runtime(&cache.0).build().unwrap();
    let files = rt.load(guest("files")).unwrap();
    let (status, out) = run(
        &files,
        RunOptions::new()
            .arg("upper")
            .stdin_bytes("piped in\nsecond line\n"),
    );
    assert_eq!(status, ExitStatus::Exited(0));
    assert_eq!(out, "PIPED IN\nSECOND LINE\n");
}

#[test]
fn stdin_bytes_are_read_from_their_start_by_every_run() {
    let cache = TempDir::new("cache");
    let rt = runtime(&cache.0).build().unwrap();
    let files = rt.load(guest("files")).unwrap();
    let options = RunOptions::new().arg("upper").stdin_bytes("once\n");
    // Not a cursor shared by the runs started from the same options (or clones).
    for options in [options.clone(), options.clone(), options] {
        assert_eq!(
            run(&files, options),
            (ExitStatus::Exited(0), "ONCE\n".to_string())
        );
    }
    // Two runs at once, each with all of it.
    let options = RunOptions::new().args(["expect", "both\n"]).stdin_bytes("both\n");
    let (a, b) = (files.start(&options).unwrap(), files.start(&options).unwrap());
    assert_eq!(
        (a.wait(), b.wait()),
        (ExitStatus::Exited(0), ExitStatus::Exited(0))
    );
}

/// The child's part of `stdio_is_the_hosts_only_when_asked_for`: run `files upper`
/// and `plain-hello`, with `RunOptions::new()` or (`inherit`) `inherit_stdio()`.
fn stdio_child(inherit: bool) {
    let rt = runtime(&weft_tests::cache_dir()).build().unwrap();
    for (name, args) in [("files", &["upper"][..]), ("plain-hello", &[][..])] {
        let program = rt.load(guest(name)).unwrap();
        let options = RunOptions::new().args(args.iter().copied());
        let options = if inherit { options.inherit_stdio() } else { options };
        assert_eq!(program.run(&options).unwrap(), ExitStatus::Exited(0));
    }
    use std::io::Write;
    // Through the test harness's own capture, which the guests' output bypasses.
    let mut out = std::io::stdout();
    writeln!(out, "child done").unwrap();
    out.flush().unwrap();
}

#[test]
fn stdio_is_the_hosts_only_when_asked_for() {
    const CHILD: &str = "WEFT_TEST_STDIO_CHILD";
    if let Ok(how) = std::env::var(CHILD) {
        return stdio_child(how == "inherit");
    }
    // This test again, in a process of its own whose stdin and stdout are pipes.
    let output = |how: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "stdio_is_the_hosts_only_when_asked_for",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, how)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"the host's stdin\n")
            .unwrap();
        let o = child.wait_with_output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
        assert!(out.contains("child done"), "{out}");
        out
    };
    // By default the guest reads an empty stdin and its output is discarded.
    let out = output("default");
    assert!(!out.contains("THE HOST'S STDIN"), "{out}");
    assert!(!out.contains("hello from a plain wasip2 command"), "{out}");
    // Asked for, they are the host's.
    let out = output("inherit");
    assert!(out.contains("THE HOST'S STDIN\n"), "{out}");
    assert!(out.contains("hello from a plain wasip2 command\n"), "{out}");
}

fn the_entry(cache: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "weftc"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.into_iter().next().unwrap()
}

#[test]
fn the_second_load_uses_the_cache_and_a_corrupt_entry_is_recompiled() {
    let cache = TempDir::new("cache");
    let rt = runtime(&cache.0).build().unwrap();
    let hello = guest("hello");
    assert_eq!(rt.load(&hello).unwrap().cache_status(), &CacheStatus::Miss);
    assert_eq!(rt.load(&hello).unwrap().cache_status(), &CacheStatus::Hit);
    // Another runtime with the same settings shares the entry.
    let rt2 = runtime(&cache.0).build().unwrap();
    let program = rt2.load(&hello).unwrap();
    assert_eq!(program.cache_status(), &CacheStatus::Hit);
    let (status, out) = run(&program, RunOptions::new());
    assert_eq!(status, ExitStatus::Exited(0));
    assert!(out.contains("333833500"));

    // Flip a byte in the middle of the compiled code.
    let entry = the_entry(&cache.0);
    let mut bytes = std::fs::read(&entry).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&entry, &bytes).unwrap();
    match rt.load(&hello).unwrap().cache_status() {
        CacheStatus::Replaced(reason) => assert!(reason.contains("failed verification"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        rt.load(&hello).unwrap().cache_status(),
        &CacheStatus::Hit,
        "the entry was rewritten"
    );

    // Truncated.
    let bytes = std::fs::read(&entry).unwrap();
    std::fs::write(&entry, &bytes[..bytes.len() / 3]).unwrap();
    assert!(matches!(
        rt.load(&hello).unwrap().cache_status(),
        CacheStatus::Replaced(_)
    ));

    // Other engine settings do not share entries.
    let unmetered = runtime(&cache.0)
        .preemption(weft::Preemption::Off)
        .build()
        .unwrap();
    assert_eq!(unmetered.load(&hello).unwrap().cache_status(), &CacheStatus::Miss);
    assert_eq!(rt.load(&hello).unwrap().cache_status(), &CacheStatus::Hit);

    // No cache, no lookup.
    let off = runtime(&cache.0).use_cache(false).build().unwrap();
    assert_eq!(off.load(&hello).unwrap().cache_status(), &CacheStatus::Disabled);
    assert_eq!(rt.clear_cache().unwrap(), 2);
    assert_eq!(rt.load(&hello).unwrap().cache_status(), &CacheStatus::Miss);
}

#[test]
fn precompiled_files_load_and_bad_ones_are_refused() {
    let cache = TempDir::new("cache");
    let dir = TempDir::new("cwasm");
    let rt = runtime(&cache.0).build().unwrap();
    let source = std::fs::read(guest("hello")).unwrap();
    let compiled = rt.precompile(&source, "hello.wasm").unwrap();
    let cwasm = dir.0.join("hello.cwasm");
    std::fs::write(&cwasm, &compiled).unwrap();

    let program = rt.load(&cwasm).unwrap();
    assert_eq!(program.cache_status(), &CacheStatus::Precompiled);
    let (status, out) = run(&program, RunOptions::new());
    assert_eq!(status, ExitStatus::Exited(0));
    assert!(out.contains("333833500"));

    let refused = |rt: &Runtime, bytes: &[u8]| -> String {
        std::fs::write(&cwasm, bytes).unwrap();
        let e = rt.load(&cwasm).unwrap_err();
        assert!(matches!(e, Error::Precompiled { .. }), "{e}");
        e.to_string()
    };
    // Another configuration.
    let other = runtime(&cache.0)
        .preemption(weft::Preemption::Off)
        .build()
        .unwrap();
    assert!(refused(&other, &compiled).contains("other engine settings"));
    // Truncated.
    assert!(refused(&rt, &compiled[..compiled.len() - 100]).contains("truncated"));
    // Tampered with.
    let mut tampered = compiled.clone();
    let n = tampered.len();
    tampered[n - 1000] ^= 1;
    assert!(refused(&rt, &tampered).contains("failed verification"));
    // Written by another installation (another secret).
    let elsewhere = TempDir::new("cache2");
    let stranger = runtime(&elsewhere.0).build().unwrap();
    assert!(refused(&stranger, &compiled).contains("failed verification"));
}

/// Whoever can change the cache directory or read its secret can make weft load
/// native code of their choosing: such a cache is refused, with the way out.
#[cfg(unix)]
#[test]
fn a_cache_that_other_users_could_change_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let chmod =
        |p: &Path, mode: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    let cache = TempDir::new("cache-perms");
    chmod(&cache.0, 0o777);
    let e = runtime(&cache.0).build().unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("can be written by other users (mode 777)"),
        "{text}"
    );
    assert!(text.contains("chmod go-w"), "{text}");

    chmod(&cache.0, 0o755);
    runtime(&cache.0)
        .build()
        .expect("a directory only its owner may write is fine");
    let key = cache.0.join("key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600,
        "the secret is made private"
    );
    chmod(&key, 0o644);
    let text = runtime(&cache.0).build().unwrap_err().to_string();
    assert!(
        text.contains("secret") && text.contains("read or written by other users"),
        "{text}"
    );
    chmod(&key, 0o600);
    runtime(&cache.0).build().unwrap();

    // A fresh cache directory is made private.
    let fresh = cache.0.join("fresh");
    runtime(&fresh).build().unwrap();
    assert_eq!(
        std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
        0o700
    );
}
