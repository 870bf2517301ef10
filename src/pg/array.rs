//! Array arguments: whether one holds a NULL, and passing one on to a statement.

use pgrx::datum::{AnyArray, DatumWithOid};
use pgrx::pg_sys;

/// Whether an array datum (any element type) holds a NULL element.
pub fn has_nulls(array: &AnyArray) -> bool {
    // SAFETY: the datum is an array argument of the current call; detoasting returns it as
    // is, or a palloc'd flat copy.
    let flat = unsafe { pg_sys::pg_detoast_datum(array.datum().cast_mut_ptr()) };
    // SAFETY: a detoasted array datum is an ArrayType.
    unsafe { pg_sys::array_contains_nulls(flat.cast()) }
}

/// The array as a statement parameter, borrowed for as long as the array argument lives.
pub fn as_parameter(array: &AnyArray) -> DatumWithOid<'_> {
    // SAFETY: the datum is the array argument of this call, of the type PostgreSQL reported;
    // the result borrows `array`, so it cannot outlive the call.
    unsafe { DatumWithOid::new(*array, array.oid()) }
}
