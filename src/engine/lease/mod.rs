//! Leases, from the SQL function to the answer (`docs/developing.md` walks one request
//! through): a backend's side (`backend`: the gate every lockhier request passes, asking the
//! keeper, waiting in the server's queue), the handoff that lets a waiting lease request keep
//! its turn (`handoff`), the leases held as shared memory lists them (`table`), refusing drops
//! that would strand leases (`drop_guard`), and the keeper, the background worker that holds
//! every lease (`keeper`), with its journal file (`journal_file`). The shared memory they meet
//! in and the keeper's process are the pg layer's (`pg::lease_area`, `pg::keeper_process`); leases
//! as data, the keeper's decisions and the journal's records are lockhier-core's
//! (`lockhier_core::lease`).

pub mod backend;
pub mod drop_guard;
pub mod handoff;
mod journal_file;
pub mod keeper;
pub mod table;
