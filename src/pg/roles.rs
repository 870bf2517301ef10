//! Roles: who is calling, and whether it may act as another role.

use pgrx::pg_sys;

/// The role the caller's privileges are checked as (`current_user`).
pub fn current() -> u32 {
    // SAFETY: GetUserId reads this backend's state.
    unsafe { pg_sys::GetUserId() }.to_u32()
}

/// Whether the current role has the privileges of `role`: is it, a member of it, or a superuser.
pub fn may_act_as(role: u32) -> bool {
    // SAFETY: GetUserId reads this backend's state.
    let me = unsafe { pg_sys::GetUserId() };
    // SAFETY: has_privs_of_role reads pg_authid and pg_auth_members (shared catalogs).
    unsafe { pg_sys::has_privs_of_role(me, pg_sys::Oid::from_u32(role)) }
}

/// A role's name, or `None` if no role has that OID (any more).
pub fn name(role: u32) -> Option<String> {
    // SAFETY: GetUserNameFromId with noerr = true returns NULL for an unknown role, else a
    // palloc'd C string.
    let name = unsafe { pg_sys::GetUserNameFromId(pg_sys::Oid::from_u32(role), true) };
    // SAFETY: non-NULL means a NUL-terminated string.
    (!name.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(name) }.to_string_lossy().into_owned())
}

/// Whether the current role is a superuser.
pub fn is_superuser() -> bool {
    // SAFETY: superuser() reads this backend's current user and pg_authid (a shared catalog).
    unsafe { pg_sys::superuser() }
}
