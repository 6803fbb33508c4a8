//! The default names of spawned microthreads. A Rust guest spawns a function by
//! two indices into its function table (its SDK's trampoline for the argument and
//! result types, and the function itself); the component's name section says what
//! the functions there are called, so a microthread spawned without a name is
//! named after its function (`worker`, `server::handle`), as the Python and
//! JavaScript SDKs name theirs, and its failures say which function failed.
//!
//! The names are read once, when the program is loaded ([`EntryNames::read`]), and
//! kept in precompiled files ([`EntryNames::encode`]), which have no name section
//! left to read.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What the Rust SDK's trampolines are called (`weft_guest::entry::trampoline`,
/// one per pair of argument and result types), demangled without their hash.
const TRAMPOLINE: &str = "weft_guest::entry::trampoline";

/// What a closure spawned as a function pointer is in the table: the standard
/// library's shim, which names no function of the program's. Such a
/// microthread goes unnamed.
const CLOSURE_SHIM: &str = "core::ops::function::";

/// The names of the functions in a Rust guest's function table, by table index.
/// Empty for a program that is no Rust SDK program, or was built without names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct EntryNames {
    /// Each named function in the table, by index: its path without the crate.
    names: HashMap<u32, Arc<str>>,
    /// The table indices of the SDK's trampolines.
    trampolines: HashSet<u32>,
}

/// What a precompiled file keeps of [`EntryNames`].
#[derive(serde::Serialize, serde::Deserialize)]
struct Kept {
    names: Vec<(u32, String)>,
    trampolines: Vec<u32>,
}

impl EntryNames {
    /// The name of a microthread spawned as `trampoline` and `function`: the
    /// function's, if `trampoline` is the Rust SDK's and the function has a name.
    pub(crate) fn of(&self, trampoline: u32, function: u32) -> Option<&Arc<str>> {
        if !self.trampolines.contains(&trampoline) {
            return None;
        }
        self.names.get(&function)
    }

    /// Whether there is no name to give.
    pub(crate) fn is_empty(&self) -> bool {
        self.trampolines.is_empty()
    }

    /// Read a component's (its bytes) entry names from the core module that holds
    /// the Rust SDK's trampolines: its function table (active element segments of
    /// table 0) and its name section. Empty if there is none, or the bytes are not
    /// readable (the compiler says why).
    pub(crate) fn read(bytes: &[u8]) -> EntryNames {
        read(bytes).unwrap_or_default()
    }

    /// The bytes a precompiled file keeps.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut names: Vec<(u32, String)> = self.names.iter().map(|(i, n)| (*i, n.to_string())).collect();
        names.sort_unstable_by_key(|(i, _)| *i);
        let mut trampolines: Vec<u32> = self.trampolines.iter().copied().collect();
        trampolines.sort_unstable();
        postcard::to_allocvec(&Kept { names, trampolines }).expect("encoding names to memory does not fail")
    }

    /// What [`encode`](EntryNames::encode) wrote; `None` if these are no such bytes.
    pub(crate) fn decode(bytes: &[u8]) -> Option<EntryNames> {
        let kept: Kept = postcard::from_bytes(bytes).ok()?;
        Some(EntryNames {
            names: kept.names.into_iter().map(|(i, n)| (i, Arc::from(n))).collect(),
            trampolines: kept.trampolines.into_iter().collect(),
        })
    }
}

/// One core module's function table and function names, as read.
#[derive(Default)]
struct Module<'a> {
    /// Table 0's entries: (table index, function index).
    table: Vec<(u32, u32)>,
    /// Function names, by function index.
    names: HashMap<u32, &'a str>,
}

impl Module<'_> {
    /// Its entry names, if it holds the Rust SDK's trampolines.
    fn entry_names(self) -> Option<EntryNames> {
        let mut out = EntryNames::default();
        for (index, function) in self.table {
            let Some(raw) = self.names.get(&function) else {
                continue;
            };
            let name = demangled(raw);
            if name.starts_with(TRAMPOLINE) {
                out.trampolines.insert(index);
            } else if !name.starts_with(CLOSURE_SHIM) {
                let name = crate::limits::truncate(without_crate(&name).to_string(), crate::limits::MAX_NAME);
                out.names.insert(index, Arc::from(name));
            }
        }
        (!out.trampolines.is_empty()).then_some(out)
    }
}

fn read(bytes: &[u8]) -> Option<EntryNames> {
    use wasmparser::{ElementItems, ElementKind, Encoding, KnownCustom, Name, Operator, Parser, Payload};
    let mut module: Option<Module> = None;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.ok()? {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } => module = Some(Module::default()),
            Payload::End(_) => {
                if let Some(found) = module.take().and_then(Module::entry_names) {
                    return Some(found);
                }
            }
            Payload::ElementSection(reader) => {
                let Some(module) = module.as_mut() else { continue };
                for element in reader {
                    let element = element.ok()?;
                    let ElementKind::Active {
                        table_index: None | Some(0),
                        offset_expr,
                    } = element.kind
                    else {
                        continue;
                    };
                    let Ok(Operator::I32Const { value: start }) = offset_expr.get_operators_reader().read()
                    else {
                        continue;
                    };
                    let mut at = start as u32;
                    match element.items {
                        ElementItems::Functions(functions) => {
                            for function in functions {
                                module.table.push((at, function.ok()?));
                                at = at.wrapping_add(1);
                            }
                        }
                        ElementItems::Expressions(_, expressions) => {
                            for expression in expressions {
                                if let Ok(Operator::RefFunc { function_index }) =
                                    expression.ok()?.get_operators_reader().read()
                                {
                                    module.table.push((at, function_index));
                                }
                                at = at.wrapping_add(1);
                            }
                        }
                    }
                }
            }
            Payload::CustomSection(section) => {
                let Some(module) = module.as_mut() else { continue };
                let KnownCustom::Name(reader) = section.as_known() else {
                    continue;
                };
                for subsection in reader {
                    // A malformed name section only costs the names.
                    let Ok(Name::Function(map)) = subsection else {
                        continue;
                    };
                    for naming in map.into_iter().flatten() {
                        module.names.insert(naming.index, naming.name);
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// A symbol demangled, without its hash (`worker::main::{{closure}}`), or as it
/// is if it is no Rust symbol.
fn demangled(symbol: &str) -> String {
    match rustc_demangle::try_demangle(symbol) {
        Ok(d) => format!("{d:#}"),
        Err(_) => symbol.to_string(),
    }
}

/// A path without its crate (`hello::worker` is `worker`): the name a reader of
/// the program's source knows the function by.
fn without_crate(path: &str) -> &str {
    match path.split_once("::") {
        Some((krate, rest))
            if !krate.is_empty() && krate.chars().all(|c| c.is_alphanumeric() || c == '_') =>
        {
            rest
        }
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_loses_its_crate_only() {
        assert_eq!(without_crate("hello::worker"), "worker");
        assert_eq!(without_crate("hello::server::handle"), "server::handle");
        assert_eq!(without_crate("hello::main::{{closure}}"), "main::{{closure}}");
        assert_eq!(
            without_crate("<T as core::fmt::Debug>::fmt"),
            "<T as core::fmt::Debug>::fmt"
        );
        assert_eq!(without_crate("plain_c_function"), "plain_c_function");
    }

    #[test]
    fn symbols_demangle_without_their_hash() {
        assert_eq!(
            demangled("_ZN8nametest6worker17h00f00eb7d34319fbE"),
            "nametest::worker"
        );
        assert_eq!(
            demangled("_ZN10weft_guest5entry10trampoline17hb1d01f970e3507a3E"),
            "weft_guest::entry::trampoline"
        );
        assert_eq!(demangled("cabi_realloc"), "cabi_realloc");
    }

    #[test]
    fn names_survive_a_precompiled_file() {
        let mut names = EntryNames::default();
        names.trampolines.insert(3);
        names.names.insert(7, Arc::from("worker"));
        let back = EntryNames::decode(&names.encode()).expect("decodes");
        assert_eq!(back, names);
        assert_eq!(back.of(3, 7).map(|n| &**n), Some("worker"));
        assert_eq!(back.of(7, 7), None, "only through a trampoline");
        assert!(EntryNames::decode(&[0xff, 0xff, 0xff]).is_none());
    }

    #[test]
    fn unreadable_bytes_have_no_names() {
        assert!(EntryNames::read(b"not wasm at all").is_empty());
    }
}
