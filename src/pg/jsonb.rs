//! A `jsonb` argument read with bounded memory: its stored size is checked before it is
//! detoasted, and it is walked in its binary form into a `serde_json::Value` instead of being
//! printed as text first. Printing would not be bounded: `1e131071` is a few bytes in jsonb and
//! 131,072 characters as text, so a small jsonb of such numbers prints gigabytes.

use pgrx::callconv::{Arg, ArgAbi};
use pgrx::nullable::Nullable;
use pgrx::pg_sys::{self, jbvType, JsonbIteratorToken as Token};
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::prelude::*;
use pgrx::{direct_function_call, FromDatum};
use serde_json::{Map, Number, Value};

/// A `jsonb` argument, not yet read.
#[derive(Clone, Copy)]
pub struct JsonbArg(pg_sys::Datum);

/// Why a `jsonb` argument was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum Unread {
    /// Its stored size, over the limit asked for.
    TooLarge(usize),
    /// Arrays and objects nested deeper than the limit asked for.
    TooDeep(usize),
}

impl JsonbArg {
    /// The value, if its stored form is at most `max_bytes` and it nests at most `max_depth`
    /// arrays and objects. Nothing is detoasted or allocated past those limits.
    pub fn read(self, max_bytes: usize, max_depth: usize) -> Result<Value, Unread> {
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
        loop {
            let mut item = pg_sys::JsonbValue {
                type_: jbvType::jbvNull,
                val: pg_sys::JsonbValue__bindgen_ty_1 { boolean: false },
            };
            // SAFETY: the iterator walks the container above; it frees its own state at the end.
            let token = unsafe { pg_sys::JsonbIteratorNext(&mut iterator, &mut item, false) };
            let done = match token {
                Token::WJB_BEGIN_ARRAY | Token::WJB_BEGIN_OBJECT => {
                    if stack.len() == max_depth {
                        return Err(Unread::TooDeep(max_depth));
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
                    key = Some(scalar_string(&item));
                    None
                }
                Token::WJB_VALUE | Token::WJB_ELEM => {
                    add(&mut stack, key.take(), scalar(&item));
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

fn is_raw_scalar(jsonb: *mut pg_sys::Jsonb) -> bool {
    // JB_FSCALAR of the root container's header (jsonb.h).
    const JB_FSCALAR: u32 = 0x1000_0000;
    // SAFETY: `jsonb` is the flat jsonb read above; its root header is its first word.
    unsafe { (*jsonb).root.header & JB_FSCALAR != 0 }
}

fn scalar_string(item: &pg_sys::JsonbValue) -> String {
    // SAFETY: a key or a string is a jbvString: this is the union member of its type.
    let string = unsafe { item.val.string };
    // SAFETY: `val` points at `len` bytes inside the jsonb, which outlives this call.
    let bytes = unsafe { std::slice::from_raw_parts(string.val.cast::<u8>(), string.len as usize) };
    String::from_utf8_lossy(bytes).into_owned()
}

fn scalar(item: &pg_sys::JsonbValue) -> Value {
    match item.type_ {
        jbvType::jbvString => Value::String(scalar_string(item)),
        // SAFETY: the union member of the type just matched.
        jbvType::jbvBool => Value::Bool(unsafe { item.val.boolean }),
        // SAFETY: as above.
        jbvType::jbvNumeric => number(pg_sys::Datum::from(unsafe { item.val.numeric })),
        _ => Value::Null,
    }
}

/// A numeric as a JSON number without printing it: exact when it is a whole number that fits
/// a bigint (an id), else the nearest double (which is never an id).
fn number(numeric: pg_sys::Datum) -> Value {
    // SAFETY: a numeric datum; this conversion saturates to infinity instead of raising.
    let approx = unsafe { direct_function_call::<f64>(pg_sys::numeric_float8_no_overflow, &[Some(numeric)]) }
        .unwrap_or(f64::NAN);
    if approx.fract() == 0.0 && approx.abs() <= 9.3e18 {
        let exact = PgTryBuilder::new(|| {
            // SAFETY: a numeric datum; out of the bigint range it raises, caught here.
            unsafe { direct_function_call::<i64>(pg_sys::numeric_int8, &[Some(numeric)]) }
        })
        .catch_others(|_| None)
        .execute();
        if let Some(exact) = exact {
            return Value::Number(exact.into());
        }
    }
    Number::from_f64(approx)
        .map(Value::Number)
        .unwrap_or_else(|| Value::String("a number out of range".into()))
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
