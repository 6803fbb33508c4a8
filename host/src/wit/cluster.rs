//! The host side of `weft:runtime/cluster`: which node the program runs on, and
//! the cluster's live nodes with their room (nothing outside a cluster).

use super::bindings::cluster as wit;
use crate::microthread::Microthread;

impl wit::Host for Microthread {
    fn node_id(&mut self) -> wasmtime::Result<Option<String>> {
        #[cfg(feature = "cluster")]
        if let Some(cluster) = &self.run.cluster {
            return Ok(Some(cluster.node_id().to_string()));
        }
        Ok(None)
    }

    fn this_node(&mut self) -> wasmtime::Result<String> {
        #[cfg(feature = "cluster")]
        if let Some(cluster) = &self.run.cluster {
            return Ok(cluster.node_id().to_string());
        }
        Ok(crate::node_name::local())
    }

    fn nodes(&mut self) -> wasmtime::Result<Vec<wit::NodeInfo>> {
        #[cfg(feature = "cluster")]
        if let Some(cluster) = &self.run.cluster {
            return Ok(cluster
                .nodes()
                .into_iter()
                .map(|n| wit::NodeInfo {
                    id: n.id,
                    free: n.free,
                    load: n.load,
                })
                .collect());
        }
        Ok(Vec::new())
    }
}
