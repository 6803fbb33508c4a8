//! The bindings generated from `wit/` (the bottom layer: every other module builds
//! on them, and they import nothing of this crate). The `entry` export they declare
//! is implemented in [`entry`](crate::entry).

wit_bindgen::generate!({
    path: "../wit",
    world: "microthread",
    generate_all,
});

pub(crate) use weft::runtime::{channel, cluster, net, registry, thread, types};
