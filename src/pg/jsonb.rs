//! A `jsonb` argument read with bounded memory and time: its stored size is checked before it
//! is detoasted, and it is walked in its binary form into a `serde_json::Value` instead of being
//! printed as text first, stopping at the first container nested too deep or the first element
//! of the outer array past the limit. Printing would not be bounded: `1e131071` is a few bytes
//! in jsonb and 131,072 characters as text, so a small jsonb of such numbers prints gigabytes.
//! Numbers are therefore never printed whole either (see [`Numbers`]).

use lockhier_core::many::{self, Unread};
use pgrx::callconv::{Arg, ArgAbi};
use pgrx::nullable::Nullable;
use pgrx::pg_sys::{self, jbvType, JsonbIteratorToken as Token};
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::{direct_function_call, FromDatum, PgMemoryContexts};
use serde_json::{Map, Number, Value};
use std::ffi::CStr;

/// A `jsonb` argument, not yet read.
#[derive(Clone, Copy)]
pub struct JsonbArg(pg_sys::Datum);

impl JsonbArg {
    /// The value, if its stored form is at most `max_bytes`, it nests at most `max_depth`
    /// arrays and objects, and an outer array holds at most `max_elements`. Nothing is detoasted
    /// past the size, and the walk stops at the first element past the other limits.
    pub fn read(self, max_bytes: usize, max_depth: usize, max_elements: usize) -> Result<Value, Unread> {
        // SAFETY: the datum is a jsonb argument of the current call; reading its size looks at
        // its header (or its TOAST pointer) only.
        let size = unsafe { pg_sys::toast_raw_datum_size(self.0) };
        if size > max_bytes {
            return Err(Unread::TooLarge(size));
        }
        // SAFETY: a jsonb datum; detoasting returns it as is or a palloc'd flat copy, freed
        // with the call's memory context.
        let jsonb = unsafe { pg_sys::pg_detoast_datum(self.0.cast_mut_ptr()) }.cast::<pg_sys::Jsonb>();
        // SAFETY: `jsonb` points at a flat jsonb; this takes its root's address, reading nothing.
        let root = unsafe { &raw mut (*jsonb).root };
        // SAFETY: the root container of that jsonb, which lives as long as the call.
        let mut iterator = unsafe { pg_sys::JsonbIteratorInit(root) };
        let mut stack: Vec<(Value, Option<String>)> = Vec::new();
        let mut key: Option<String> = None;
        let mut numbers = Numbers::default();
        loop {
            // A walk of 256 kB is short, but a cancel should not wait for it.
            pgrx::check_for_interrupts!();
            let mut item = pg_sys::JsonbValue {
                type_: jbvType::jbvNull,
                val: pg_sys::JsonbValue__bindgen_ty_1 { boolean: false },
            };
            // SAFETY: the iterator walks the container above; it frees its own state at the end.
            let token = unsafe { pg_sys::JsonbIteratorNext(&mut iterator, &mut item, false) };
            let done = match token {
                Token::WJB_BEGIN_ARRAY | Token::WJB_BEGIN_OBJECT => {
                    if stack.len() == max_depth {
                        return Err(Unread::TooDeep);
                    }
                    if stack.len() == 1 && outer_length(&stack) == max_elements {
                        return Err(Unread::TooMany);
                    }
                    let container = if token == Token::WJB_BEGIN_ARRAY {
                        Value::Array(Vec::new())
                    } else {
                        Value::Object(Map::new())
                    };
                    stack.push((container, key.take()));
                    None
                }
                Token::WJB_KEY => {
                    key = Some(scalar_string(&item)?);
                    None
                }
                Token::WJB_VALUE | Token::WJB_ELEM => {
                    if token == Token::WJB_ELEM && stack.len() == 1 && outer_length(&stack) == max_elements {
                        return Err(Unread::TooMany);
                    }
                    let value = scalar(&item, &mut numbers)?;
                    add(&mut stack, key.take(), value);
                    None
                }
                Token::WJB_END_ARRAY | Token::WJB_END_OBJECT => {
                    let (mut done, its_key) = stack.pop().expect("a container ends after it began");
                    // A top-level scalar is stored as a one-element array marked raw.
                    if token == Token::WJB_END_ARRAY && stack.is_empty() && is_raw_scalar(jsonb) {
                        if let Value::Array(mut one) = done {
                            done = one.pop().unwrap_or(Value::Null);
                        }
                    }
                    if stack.is_empty() {
                        Some(done)
                    } else {
                        add(&mut stack, its_key, done);
                        None
                    }
                }
                _ => Some(Value::Null),
            };
            if let Some(value) = done {
                return Ok(value);
            }
        }
    }
}

fn add(stack: &mut [(Value, Option<String>)], key: Option<String>, value: Value) {
    match stack.last_mut() {
        Some((Value::Array(elements), _)) => elements.push(value),
        Some((Value::Object(members), _)) => {
            members.insert(key.unwrap_or_default(), value);
        }
        _ => {}
    }
}

/// How many elements the outer container holds so far.
fn outer_length(stack: &[(Value, Option<String>)]) -> usize {
    match stack.first() {
        Some((Value::Array(elements), _)) => elements.len(),
        Some((Value::Object(members), _)) => members.len(),
        _ => 0,
    }
}

fn is_raw_scalar(jsonb: *mut pg_sys::Jsonb) -> bool {
    // JB_FSCALAR of the root container's header (jsonb.h).
    const JB_FSCALAR: u32 = 0x1000_0000;
    // SAFETY: `jsonb` is the flat jsonb read above; its root header is its first word.
    unsafe { (*jsonb).root.header & JB_FSCALAR != 0 }
}

fn scalar_string(item: &pg_sys::JsonbValue) -> Result<String, Unread> {
    // SAFETY: a key or a string is a jbvString: this is the union member of its type.
    let string = unsafe { item.val.string };
    // SAFETY: `val` points at `len` bytes inside the jsonb, which outlives this call.
    let bytes = unsafe { std::slice::from_raw_parts(string.val.cast::<u8>(), string.len as usize) };
    // Not lossy: two names that differ only in bytes that are not UTF-8 must not become one.
    String::from_utf8(bytes.to_vec()).map_err(|_| Unread::NotUtf8)
}

fn scalar(item: &pg_sys::JsonbValue, numbers: &mut Numbers) -> Result<Value, Unread> {
    Ok(match item.type_ {
        jbvType::jbvString => Value::String(scalar_string(item)?),
        // SAFETY: the union member of the type just matched.
        jbvType::jbvBool => Value::Bool(unsafe { item.val.boolean }),
        // SAFETY: the union member of the type just matched.
        jbvType::jbvNumeric => numbers.read(pg_sys::Datum::from(unsafe { item.val.numeric })),
        _ => Value::Null,
    })
}

/// Reads numerics as JSON values, deciding with numeric arithmetic, never by printing them
/// whole (`numeric_float8_no_overflow` prints its argument).
#[derive(Default)]
struct Numbers {
    /// The bigint range as numerics, made on the first number.
    bounds: Option<(pg_sys::Datum, pg_sys::Datum)>,
    /// Where a number that is not a plain id is looked at, emptied after each: made on the
    /// first such number.
    scratch: Option<PgMemoryContexts>,
}

/// Below this magnitude a number is printed (rounded to 20 decimals: at most 42 characters)
/// to be shown in an error; above it, it is only described.
const PRINTED_BELOW: &CStr = c"1e20";

fn compare(a: pg_sys::Datum, b: pg_sys::Datum) -> i32 {
    // SAFETY: two numerics; numeric_cmp never raises.
    unsafe { direct_function_call::<i32>(pg_sys::numeric_cmp, &[Some(a), Some(b)]) }.unwrap_or(0)
}

fn numeric_of(
    f: unsafe fn(pg_sys::FunctionCallInfo) -> pg_sys::Datum,
    args: &[Option<pg_sys::Datum>],
) -> pg_sys::Datum {
    // SAFETY: numeric functions of numerics (and an int4 scale), none of which raises for a
    // finite numeric (jsonb holds no NaN or infinity) or returns NULL.
    unsafe { direct_function_call::<pg_sys::Datum>(f, args) }.expect("a numeric result")
}

fn numeric_of_i64(value: i64) -> pg_sys::Datum {
    // SAFETY: int64_to_numeric builds a numeric from an integer; it never raises.
    pg_sys::Datum::from(unsafe { pg_sys::int64_to_numeric(value) })
}

impl Numbers {
    /// Exact when the numeric is a whole number that fits a bigint (the only numbers a request
    /// takes: ids); else, for the error that refuses it, the nearest double of it rounded to
    /// 20 decimals if that shows it is not an id, or a description
    /// ([`many::UNPRINTED_NUMBERS`]).
    fn read(&mut self, x: pg_sys::Datum) -> Value {
        let (min, max) =
            *self.bounds.get_or_insert_with(|| (numeric_of_i64(i64::MIN), numeric_of_i64(i64::MAX)));
        // An id as written (scale 0: no decimals) takes no allocation: the usual case.
        // SAFETY: a numeric; its display scale is read from its header.
        let scale = unsafe { direct_function_call::<i32>(pg_sys::numeric_scale, &[Some(x)]) };
        if scale == Some(0) {
            if let Some(id) = id_within(x, min, max) {
                return id;
            }
        }
        let scratch = self.scratch.get_or_insert_with(|| PgMemoryContexts::new("lockhier jsonb numbers"));
        // SAFETY: everything `looked_at` allocates is palloc'd in `scratch` and not kept: its
        // result is Rust's, so the context is emptied as soon as it returns.
        let value = unsafe { scratch.switch_to(|_| looked_at(x, min, max)) };
        // SAFETY: nothing allocated in `scratch` is referenced any more (see above).
        unsafe { scratch.reset() };
        value
    }
}

/// A whole numeric as an id, if it lies within `min` and `max` (the bigint range).
fn id_within(x: pg_sys::Datum, min: pg_sys::Datum, max: pg_sys::Datum) -> Option<Value> {
    if compare(x, min) < 0 || compare(x, max) > 0 {
        return None;
    }
    // SAFETY: a whole numeric within the bigint range: the conversion cannot raise.
    unsafe { direct_function_call::<i64>(pg_sys::numeric_int8, &[Some(x)]) }
        .map(|id| Value::Number(id.into()))
}

/// A number that is not an id as written: an id still if it is whole (`12.0`), else what the
/// error shows of it. `numeric_int8` is only called on a whole number known to fit, and
/// `numeric_float8_no_overflow` only on a rounded number below 1e20.
fn looked_at(x: pg_sys::Datum, min: pg_sys::Datum, max: pg_sys::Datum) -> Value {
    let truncated = numeric_of(pg_sys::numeric_trunc, &[Some(x), Some(pg_sys::Datum::from(0i32))]);
    let whole = compare(x, truncated) == 0;
    if whole {
        if let Some(id) = id_within(x, min, max) {
            return id;
        }
    }
    let magnitude = numeric_of(pg_sys::numeric_abs, &[Some(x)]);
    let limit = numeric_of(
        pg_sys::numeric_in,
        &[
            Some(pg_sys::Datum::from(PRINTED_BELOW.as_ptr())),
            Some(pg_sys::Datum::from(0u32)),
            Some(pg_sys::Datum::from(-1i32)),
        ],
    );
    if compare(magnitude, limit) >= 0 {
        return Value::String(many::UNPRINTED_NUMBERS[0].into());
    }
    let rounded = numeric_of(pg_sys::numeric_round, &[Some(x), Some(pg_sys::Datum::from(20i32))]);
    // SAFETY: a numeric below 1e20 with at most 20 decimals: printed in at most 42 characters.
    let approx = unsafe { direct_function_call::<f64>(pg_sys::numeric_float8_no_overflow, &[Some(rounded)]) }
        .unwrap_or(f64::NAN);
    // 2.9999999999999999999 is no id, but its nearest double is 3.0: say what it is instead.
    if !whole && approx.fract() == 0.0 {
        return Value::String(many::UNPRINTED_NUMBERS[1].into());
    }
    Number::from_f64(approx)
        .map(Value::Number)
        .unwrap_or_else(|| Value::String(many::UNPRINTED_NUMBERS[0].into()))
}

impl FromDatum for JsonbArg {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<JsonbArg> {
        (!is_null).then_some(JsonbArg(datum))
    }
}

// SAFETY: the argument is declared `jsonb` (below), so its datum is a jsonb; it is only kept,
// not read, until `read`.
unsafe impl<'fcx> ArgAbi<'fcx> for JsonbArg {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        // SAFETY: as above; a NULL is never passed here (pgrx calls `unbox_nullable_arg` for Option).
        unsafe { arg.unbox_arg_using_from_datum() }.expect("a jsonb argument that is not NULL")
    }

    unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<Self> {
        // SAFETY: as above.
        unsafe { arg.unbox_arg_using_from_datum() }.into()
    }
}

// SAFETY: it is a jsonb in SQL, as `FromDatum` above reads it.
unsafe impl SqlTranslatable for JsonbArg {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(JsonbArg);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("jsonb"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> = Ok(ReturnsRef::One(SqlMappingRef::literal("jsonb")));
}
