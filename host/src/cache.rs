//! Compiled programs on disk: the compilation cache, and the precompiled files that
//! `weft compile` writes.
//!
//! Compiled code is native code, and wasmtime loads it without re-validating it, so
//! nothing is loaded that this weft installation did not write itself, intact:
//!
//! ```text
//! magic (8) | engine key (32) | flags (8, LE) | payload length (8, LE) | keyed BLAKE3 of flags and payload (32) | payload
//! payload: names length (4, LE) | names | serialized component
//! ```
//!
//! The flags say what a runner must know before it can pick the engine settings to
//! load the file with (whether the program can spawn at all); a file whose flags
//! were changed fails verification like any other change. The names are what a
//! precompiled file keeps of the program's name section: its spawnable functions'
//! names (`EntryNames`); none in a cache entry, whose component is at hand.
//!
//! The *engine key* hashes weft's version and every engine setting that changes
//! generated code (wasmtime's `precompile_compatibility_hash`: its version, the
//! target, fuel, memory layout). The payload's hash is keyed with a secret kept in the
//! cache directory (created on first use, readable by its owner only), so a file
//! changed, truncated, or made elsewhere fails verification and is recompiled (cache)
//! or refused with a clear error (`.cwasm`). Cache entries are named after the engine
//! key and the BLAKE3 of the component's bytes.
//!
//! The secret is only as good as the directory that keeps it: weft refuses a cache
//! directory that is not the user's own or that other users may write to, and a
//! secret that other users may read or write.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::entry_names::EntryNames;
use crate::limits::Footprint;

/// The first bytes of every file this module writes.
pub(crate) const MAGIC: &[u8; 8] = b"weftcw\x00\x03";
const HEADER: usize = 8 + 32 + 8 + 8 + 32;

/// Flag: the program imports nothing of `weft:runtime` (it cannot spawn).
const FLAG_ALONE: u64 = 1;

/// The flags' bits 8-23 and 24-39: the program's core instances and tables (its
/// [`Footprint`]); both 0 in a file that does not say (written before they were).
const FOOTPRINT_SHIFT: u32 = 8;

fn flags(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(40..48)?.try_into().ok()?))
}

/// What a precompiled file says of its program's imports (unverified: the engine
/// settings it leads to are checked when the file is loaded).
pub(crate) fn precompiled_imports_weft(bytes: &[u8]) -> Option<bool> {
    Some(flags(bytes)? & FLAG_ALONE == 0)
}

/// What a precompiled file says its program takes from the instance pool (the
/// flags are covered by the file's keyed hash, checked when it is loaded).
pub(crate) fn precompiled_footprint(bytes: &[u8]) -> Option<Footprint> {
    let counts = flags(bytes)? >> FOOTPRINT_SHIFT;
    let footprint = Footprint {
        core_instances: (counts & 0xFFFF) as u32,
        tables: ((counts >> 16) & 0xFFFF) as u32,
    };
    (footprint.core_instances > 0).then_some(footprint)
}

/// How a program was obtained, for the curious and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheStatus {
    /// Compiled; no cache configured.
    Disabled,
    /// Loaded from the cache.
    Hit,
    /// Compiled, and stored in the cache.
    Miss,
    /// A cache entry was unusable (the reason); recompiled and replaced.
    Replaced(String),
    /// Loaded from a precompiled file (`weft compile`).
    Precompiled,
}

/// Why a compiled file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    /// Shorter than its header says.
    #[error("it is truncated")]
    Truncated,
    /// Written by an older weft, in a format this one no longer reads.
    #[error("it was written by another version of weft: compile it again")]
    OldFormat,
    /// Compiled by another weft version, or with other engine settings.
    #[error(
        "it was compiled by another version of weft or with other engine settings \
         (fuel, memory limits): compile it again with the same flags"
    )]
    OtherEngine,
    /// The payload does not match its keyed hash: changed, or not written by this
    /// weft installation.
    #[error("it failed verification: it was changed, or not written by this weft installation")]
    Corrupt,
    /// The file cannot be read or written.
    #[error("{0}")]
    Io(String),
    /// The cache directory or its secret could be changed or read by other users.
    #[error("{0}")]
    Insecure(String),
}

/// The cache directory and the secret that signs what weft writes.
#[derive(Clone)]
pub(crate) struct Store {
    dir: PathBuf,
    key: [u8; 32],
}

/// The user's cache directory for weft: `$WEFT_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/weft`, else `$HOME/.cache/weft`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("WEFT_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("weft"));
    }
    let home = std::env::var_os("HOME").filter(|d| !d.is_empty())?;
    Some(PathBuf::from(home).join(".cache").join("weft"))
}

impl Store {
    /// Open (creating if needed) the store in `dir`, with its secret.
    pub(crate) fn open(dir: &Path) -> Result<Store, Unusable> {
        let io = |what: &str, e: std::io::Error| Unusable::Io(format!("{what} {}: {e}", dir.display()));
        create_private_dir(dir).map_err(|e| io("cannot create the cache directory", e))?;
        check_private(dir, true)?;
        let key_path = dir.join("key");
        for _ in 0..100 {
            if let Ok(k) = std::fs::read(&key_path) {
                if let Ok(key) = <[u8; 32]>::try_from(k.as_slice()) {
                    check_private(&key_path, false)?;
                    return Ok(Store {
                        dir: dir.to_owned(),
                        key,
                    });
                }
                // Another process is writing it: look again.
                std::thread::sleep(std::time::Duration::from_millis(5));
                continue;
            }
            let mut key = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut key))
                .map_err(|e| io("cannot make a secret for the cache in", e))?;
            // Written to a temporary file of its own and linked in place: readers
            // never see a partial key, and of two threads or processes racing, one
            // key wins for all. Read back (next turn) rather than trusted: the key
            // is what is on disk.
            let tmp = temporary(&key_path);
            write_private(&tmp, &key).map_err(|e| io("cannot write the cache's secret in", e))?;
            let linked = std::fs::hard_link(&tmp, &key_path);
            if let Err(e) = std::fs::remove_file(&tmp) {
                tracing::warn!(target: "weft::cache", "cannot remove the temporary file {}: {e}", tmp.display());
            }
            match linked {
                Ok(()) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io("cannot write the cache's secret in", e)),
            }
        }
        Err(Unusable::Io(format!(
            "cannot read the cache's secret in {}",
            dir.display()
        )))
    }

    fn entry(&self, engine_key: &[u8; 32], source: &[u8]) -> PathBuf {
        let mut h = blake3::Hasher::new();
        h.update(engine_key).update(blake3::hash(source).as_bytes());
        self.dir.join(format!("{}.weftc", &h.finalize().to_hex()[..40]))
    }

    /// A compiled component from the cache, if a valid entry exists.
    pub(crate) fn load(&self, engine: &Engine, source: &[u8]) -> Result<Option<Component>, Unusable> {
        let key = engine_key(engine);
        let bytes = match std::fs::read(self.entry(&key, source)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Unusable::Io(e.to_string())),
        };
        self.deserialize(engine, &bytes)
            .map(|(component, _)| Some(component))
    }

    /// Store a compiled component (best effort: errors are for a warning).
    pub(crate) fn save(&self, engine: &Engine, source: &[u8], component: &Component) -> Result<(), Unusable> {
        // The cache is looked up with the engine already chosen: no flags needed.
        let bytes = self.serialize(engine, component, false, None, &EntryNames::default())?;
        let path = self.entry(&engine_key(engine), source);
        write_private(&path, &bytes)
            .map_err(|e| Unusable::Io(format!("cannot write {}: {e}", path.display())))
    }

    /// The bytes of a precompiled file: header, then the names and the
    /// serialized component. `alone`: the program imports nothing of
    /// `weft:runtime`; `footprint`: what it takes from the instance pool, if
    /// known; `names`: its spawnable functions' names.
    pub(crate) fn serialize(
        &self,
        engine: &Engine,
        component: &Component,
        alone: bool,
        footprint: Option<Footprint>,
        names: &EntryNames,
    ) -> Result<Vec<u8>, Unusable> {
        let names = names.encode();
        let compiled = component
            .serialize()
            .map_err(|e| Unusable::Io(format!("{e:#}")))?;
        let names_len = u32::try_from(names.len())
            .map_err(|_| Unusable::Io("the program's function names are over 4 GiB".into()))?;
        let mut payload = Vec::with_capacity(4 + names.len() + compiled.len());
        payload.extend_from_slice(&names_len.to_le_bytes());
        payload.extend_from_slice(&names);
        payload.extend_from_slice(&compiled);
        let counts = footprint.map_or(0, |f| {
            u64::from(f.core_instances.min(0xFFFF)) | (u64::from(f.tables.min(0xFFFF)) << 16)
        });
        let flags = (if alone { FLAG_ALONE } else { 0 } | (counts << FOOTPRINT_SHIFT)).to_le_bytes();
        let mut out = Vec::with_capacity(HEADER + payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&engine_key(engine));
        out.extend_from_slice(&flags);
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(self.hash(&flags, &payload).as_bytes());
        out.extend_from_slice(&payload);
        Ok(out)
    }

    fn hash(&self, flags: &[u8], payload: &[u8]) -> blake3::Hash {
        blake3::Hasher::new_keyed(&self.key)
            .update(flags)
            .update(payload)
            .finalize()
    }

    /// Verify a precompiled file and load it: its component and the names it kept.
    pub(crate) fn deserialize(
        &self,
        engine: &Engine,
        bytes: &[u8],
    ) -> Result<(Component, EntryNames), Unusable> {
        if bytes.len() >= 8 && bytes[..6] == MAGIC[..6] && bytes[..8] != MAGIC[..] {
            return Err(Unusable::OldFormat);
        }
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Err(Unusable::Truncated);
        }
        if bytes[8..40] != engine_key(engine) {
            return Err(Unusable::OtherEngine);
        }
        let flags = &bytes[40..48];
        let len = u64::from_le_bytes(bytes[48..56].try_into().expect("8 bytes"));
        let payload = &bytes[HEADER..];
        if payload.len() as u64 != len {
            return Err(Unusable::Truncated);
        }
        if self.hash(flags, payload) != blake3::Hash::from_bytes(bytes[56..88].try_into().expect("32")) {
            return Err(Unusable::Corrupt);
        }
        // Verified: what `serialize` wrote, so a bad length or names are a bug of
        // this weft's, reported as such rather than trusted.
        let names_len = u32::from_le_bytes(
            payload
                .get(..4)
                .ok_or(Unusable::Truncated)?
                .try_into()
                .expect("4 bytes"),
        );
        let (names, compiled) = payload[4..]
            .split_at_checked(names_len as usize)
            .ok_or(Unusable::Truncated)?;
        let names = EntryNames::decode(names)
            .ok_or_else(|| Unusable::Io("its function names cannot be read: compile it again".into()))?;
        // SAFETY: the payload is exactly what `serialize` produced with this
        // installation's secret, for an engine with the same code-generation
        // settings; wasmtime checks the engine compatibility again.
        let component = unsafe { Component::deserialize(engine, compiled) }
            .map_err(|e| Unusable::Io(format!("{e:#}")))?;
        Ok((component, names))
    }

    /// Remove every cache entry (not the secret). Returns how many were removed.
    pub(crate) fn clear(&self) -> std::io::Result<usize> {
        let mut n = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "weftc") {
                std::fs::remove_file(&path)?;
                n += 1;
            }
        }
        Ok(n)
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Hash of what must match for compiled code to be reusable.
pub(crate) fn engine_key(engine: &Engine) -> [u8; 32] {
    struct B3(blake3::Hasher);
    impl Hasher for B3 {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            u64::from_le_bytes(self.0.finalize().as_bytes()[..8].try_into().expect("8 bytes"))
        }
    }
    let mut h = B3(blake3::Hasher::new());
    h.0.update(b"weft ").update(env!("CARGO_PKG_VERSION").as_bytes());
    engine.precompile_compatibility_hash().hash(&mut h);
    *h.0.finalize().as_bytes()
}

/// Create `dir` (and its missing parents) readable by its owner only.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Refuse a cache directory (`dir`) or secret that is not the user's own, or that
/// other users may change (or, for the secret, read): whoever can change them can
/// make weft load native code of their choosing.
#[cfg(unix)]
fn check_private(path: &Path, dir: bool) -> Result<(), Unusable> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| Unusable::Io(format!("cannot inspect {}: {e}", path.display())))?;
    let what = if dir { "cache directory" } else { "cache's secret" };
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(Unusable::Insecure(format!(
            "the {what} {} belongs to another user (uid {}, not {me}): weft will not trust it; \
             choose a directory of your own with WEFT_CACHE_DIR",
            path.display(),
            meta.uid()
        )));
    }
    let (kind_ok, forbidden, fix) = if dir {
        (meta.is_dir(), 0o022, "chmod go-w")
    } else {
        (meta.is_file(), 0o077, "chmod 600")
    };
    if !kind_ok {
        return Err(Unusable::Insecure(format!(
            "the {what} {} is not a plain {}",
            path.display(),
            if dir { "directory" } else { "file" }
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & forbidden != 0 {
        return Err(Unusable::Insecure(format!(
            "the {what} {} can be {} by other users (mode {mode:03o}): weft will not trust it; \
             run `{fix} {}`, or choose another directory with WEFT_CACHE_DIR",
            path.display(),
            if dir { "written" } else { "read or written" },
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _dir: bool) -> Result<(), Unusable> {
    Ok(())
}

/// A temporary name beside `path`, unique to this call: the process id and a
/// counter, so that neither another process nor another thread uses it too.
fn temporary(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    path.with_extension(format!("part{}-{n}", std::process::id()))
}

/// Write a file atomically (a temporary file of its own, then rename), readable by
/// its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temporary(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("weft-cache-test-{name}-{}", std::process::id()));
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("cannot clear {}: {e}", dir.display()),
        }
        dir
    }

    /// Threads opening a new cache at once all end up with the key on disk.
    #[test]
    fn threads_creating_the_key_at_once_agree_with_the_disk() {
        for round in 0..20 {
            let dir = fresh_dir(&format!("key{round}"));
            let barrier = std::sync::Barrier::new(8);
            let keys: Vec<[u8; 32]> = std::thread::scope(|scope| {
                let opened: Vec<_> = (0..8)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            Store::open(&dir).expect("open").key
                        })
                    })
                    .collect();
                opened.into_iter().map(|t| t.join().unwrap()).collect()
            });
            let on_disk = std::fs::read(dir.join("key")).unwrap();
            for key in keys {
                assert_eq!(&key[..], &on_disk[..], "round {round}");
            }
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    /// Threads writing one file at once: whichever wins, the file is one of
    /// theirs, whole, never a mix.
    #[test]
    fn threads_writing_one_file_at_once_never_mix() {
        let dir = fresh_dir("write");
        create_private_dir(&dir).unwrap();
        let path = dir.join("entry.weftc");
        let len = 256 << 10;
        std::thread::scope(|scope| {
            for t in 0..4u8 {
                let path = &path;
                scope.spawn(move || {
                    let bytes = vec![t + 1; len];
                    for _ in 0..50 {
                        write_private(path, &bytes).unwrap();
                        let read = std::fs::read(path).unwrap();
                        assert_eq!(read.len(), len);
                        assert!(read.iter().all(|&b| b == read[0]), "a mix of writers' bytes");
                    }
                });
            }
        });
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            [std::ffi::OsString::from("entry.weftc")],
            "temporary files left"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
