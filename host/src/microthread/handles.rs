//! The handles a microthread holds (join handles, channel ends, sockets): its
//! store's resource table, each entry also counted against its run's total
//! (`RunOptions::max_run_handles`), so that many microthreads together cannot make
//! the host hold more than that.

use std::any::Any;
use std::sync::Arc;

use wasmtime::component::{Resource, ResourceTable, ResourceTableError};

use crate::limits::Quota;

/// The run's handles are all taken.
#[derive(Debug, thiserror::Error)]
#[error(
    "the run's microthreads already hold its maximum of {0} handles (join handles, channel ends, \
     sockets; all its microthreads together): drop some, or raise it with \
     RunOptions::max_run_handles or weft run --max-run-handles"
)]
pub(crate) struct RunHandlesExhausted(pub(crate) u32);

/// Why a handle could not be added.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PushError {
    #[error(transparent)]
    Run(#[from] RunHandlesExhausted),
    #[error(transparent)]
    Table(#[from] ResourceTableError),
}

/// A microthread's resource table, counted against its run's handles.
pub(crate) struct Handles {
    table: ResourceTable,
    /// Entries pushed here and not deleted: each holds a unit of `run`.
    held: u32,
    run: Arc<Quota>,
}

impl Handles {
    pub(crate) fn new(run: Arc<Quota>) -> Self {
        Handles {
            table: ResourceTable::new(),
            held: 0,
            run,
        }
    }

    /// Add a handle, if the run has room for one more.
    pub(crate) fn push<T: Send + 'static>(&mut self, entry: T) -> Result<Resource<T>, PushError> {
        if !self.run.take() {
            return Err(RunHandlesExhausted(self.run.max()).into());
        }
        match self.table.push(entry) {
            Ok(handle) => {
                self.held += 1;
                Ok(handle)
            }
            Err(e) => {
                self.run.give_back();
                Err(e.into())
            }
        }
    }

    pub(crate) fn get<T: Any + Sized>(&self, key: &Resource<T>) -> Result<&T, ResourceTableError> {
        self.table.get(key)
    }

    /// Another handle to what `key` holds (a clone of it), if the run has room
    /// for one more.
    pub(crate) fn share<T: Clone + Send + 'static>(
        &mut self,
        key: &Resource<T>,
    ) -> Result<Resource<T>, PushError> {
        let copy = self.table.get(key)?.clone();
        self.push(copy)
    }

    /// Take a handle out (it is dropped, or moves to another microthread).
    pub(crate) fn delete<T: Any>(&mut self, handle: Resource<T>) -> Result<T, ResourceTableError> {
        let entry = self.table.delete(handle)?;
        self.held = self.held.saturating_sub(1);
        self.run.give_back();
        Ok(entry)
    }

    /// The table itself, for WASI's own resources (streams and the like), which
    /// the store's limit bounds, not the run's.
    pub(crate) fn wasi(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl Drop for Handles {
    fn drop(&mut self) {
        self.run.give_back_many(self.held);
    }
}
