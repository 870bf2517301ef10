//! Everything a user can get wrong or run into, as plain data with its message: the errors
//! of the modules that parse arguments (each owns its own, and promises only those), composed,
//! and the refusals found while taking a request. How each is raised (SQLSTATE, DETAIL, HINT)
//! is the SQL layer's to say, in one place; the DETAIL of a conflict is `conflict`'s to write.

use crate::class::ClassError;
use crate::conflict::{Conflict, RowConflict, TableLocked};
use crate::lease::in_use::HeldLeases;
use crate::lease::{InvalidOwner, InvalidTtl};
use crate::request::{NegativeWait, NullArgument, UnknownMode};
use crate::row_mode::UnknownRowMode;
use crate::scope::IdPathError;

#[derive(Debug, thiserror::Error)]
pub enum LockhierError {
    #[error(transparent)]
    NullArgument(#[from] NullArgument),

    #[error(transparent)]
    UnknownMode(#[from] UnknownMode),

    #[error(transparent)]
    Class(#[from] ClassError),

    #[error(transparent)]
    NegativeWait(#[from] NegativeWait),

    #[error(transparent)]
    IdPath(#[from] IdPathError),

    /// A path of names refused (`path.rs`).
    #[error(transparent)]
    InvalidPath(#[from] crate::path::PathError),

    #[error("operation in progress: cannot lock {}", .0.what())]
    Conflict(Box<Conflict>),

    /// Several requests in one call (`many.rs`), refused before anything was taken.
    #[error(transparent)]
    Many(#[from] crate::many::ManyError),

    #[error(transparent)]
    UnknownRowMode(#[from] UnknownRowMode),

    #[error("relation with OID {0} does not exist")]
    NoSuchRelation(u32),

    #[error("column \"{column}\" of relation {table} does not exist")]
    NoSuchColumn { table: String, column: String },

    #[error("table {0} has no primary key")]
    NoPrimaryKey(String),

    #[error("the primary key of table {table} has {} columns ({})", .columns.len(), .columns.join(", "))]
    CompositePrimaryKey { table: String, columns: Vec<String> },

    #[error(
        "ids of type {ids_type} cannot be compared with column \"{column}\" ({column_type}) of table {table}"
    )]
    IdsTypeMismatch { ids_type: String, column: String, column_type: String, table: String },

    #[error("operation in progress: cannot lock {}", .0.what())]
    RowConflict(Box<RowConflict>),

    #[error("ids must not contain NULL")]
    NullIdsElement,

    #[error("cannot lock rows of {table}: it is {kind}, not a table")]
    NotATable { table: String, kind: &'static str },

    #[error("cannot lock rows of foreign table {0} within a bounded wait")]
    ForeignTable(String),

    #[error("operation in progress: cannot lock {} rows for {}: {} is locked", .0.table, .0.mode.name(), .0.what_is_locked())]
    TableLocked(Box<TableLocked>),

    #[error(transparent)]
    InvalidOwner(#[from] InvalidOwner),

    #[error(transparent)]
    InvalidTtl(#[from] InvalidTtl),

    #[error("lockhier leases are not available: lockhier is not in shared_preload_libraries")]
    LeasesNotLoaded,

    #[error("lockhier leases are not available during recovery")]
    LeasesInRecovery,

    #[error("lockhier's lease keeper is not running")]
    KeeperNotRunning,

    #[error("the leases held before the server restarted are not restored yet")]
    LeasesNotRestored,

    #[error("too many leases: {0} are held, the most lockhier.max_leases allows")]
    TooManyLeases(usize),

    #[error("permission denied for lease {token} of owner \"{owner}\"")]
    LeasePermission { token: i64, owner: String },

    /// `release_lease` or `renew_lease` with an `owner` that is not the lease's (nor above it).
    #[error("lease {token} belongs to another owner")]
    NotLeaseOwner { token: i64, owner: String, asked: String },

    #[error("could not write lockhier's lease journal: {0}")]
    JournalFailed(String),

    #[error("out of shared memory")]
    LockTableFull,

    #[error("lockhier's lease keeper failed: {0}")]
    KeeperFailed(String),

    #[error("cannot drop extension lockhier: {} in this database", .0.are_held())]
    ExtensionHasLeases(Box<HeldLeases>),

    #[error("cannot drop role \"{role}\": it holds {}", .held.lockhier_leases())]
    RoleHasLeases { role: String, held: Box<HeldLeases> },
}
