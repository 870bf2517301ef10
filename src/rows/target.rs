//! What a `lock_rows` call locks rows of: the table, its key column and that column's
//! equality operator, read from the catalog in one query, and the statement that locks them.

use crate::pg::relations;
use lockhier_core::{LockhierError, RowMode};
use pgrx::prelude::*;

/// The table and key column a call locks rows of.
pub struct Target {
    pub relid: pg_sys::Oid,
    /// `"My App"."Field Rows"`, for the statement.
    pub qualified: String,
    /// As `regclass` shows it, for messages.
    pub shown: String,
    pub column: String,
    /// The column, quoted for the statement.
    pub column_sql: String,
    pub column_type: String,
    /// `OPERATOR(pg_catalog.=)`, or the schema of the column type's own equality operator.
    pub equals: String,
}

/// Names, kind, primary key and key column of a relation, in one catalog read. `$2` is the key
/// column asked for, or NULL for the primary key's.
///
/// Every function, operator and type is qualified with `pg_catalog`: the statement runs with
/// the caller's search_path and privileges, and an unqualified name would let a look-alike in
/// a schema earlier on that path (or a better-matching one anywhere on it) run as the caller.
const TARGET_QUERY: &str = "
SELECT pg_catalog.format('%I.%I', n.nspname, c.relname),
       c.oid::pg_catalog.regclass::pg_catalog.text,
       c.relkind::pg_catalog.text,
       pk.columns,
       key.attname::pg_catalog.text,
       pg_catalog.quote_ident(key.attname),
       pg_catalog.format_type(key.atttypid, key.atttypmod),
       key.atttypid
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  LEFT JOIN LATERAL (
        SELECT pg_catalog.array_agg(a.attname::pg_catalog.text ORDER BY k.position) AS columns
          FROM pg_catalog.pg_index i
         CROSS JOIN pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
          JOIN pg_catalog.pg_attribute a
            ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) k.attnum
         WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisprimary) pk ON true
  LEFT JOIN pg_catalog.pg_attribute key
    ON key.attrelid OPERATOR(pg_catalog.=) c.oid AND NOT key.attisdropped
   AND key.attnum OPERATOR(pg_catalog.>) 0
   AND key.attname OPERATOR(pg_catalog.=) coalesce($2::pg_catalog.name,
         CASE WHEN pg_catalog.cardinality(pk.columns) OPERATOR(pg_catalog.=) 1
              THEN pk.columns[1]::pg_catalog.name END)
 WHERE c.oid OPERATOR(pg_catalog.=) $1";

impl Target {
    /// `SELECT pg_catalog.count(*) FROM (SELECT FROM <table> WHERE <column> OPERATOR(..=)
    /// ANY($1) FOR <mode>) ...`, qualified throughout for the reason given at `TARGET_QUERY`.
    pub fn locking_statement(&self, mode: RowMode, nowait: bool) -> String {
        format!(
            "SELECT pg_catalog.count(*) FROM (SELECT FROM {} WHERE {} {} ANY($1) FOR {}{}) AS locked",
            self.qualified,
            self.column_sql,
            self.equals,
            mode.name().to_ascii_uppercase(),
            if nowait { " NOWAIT" } else { "" },
        )
    }

    pub fn resolve(rel: pg_sys::Oid, key_column: Option<String>) -> Result<Target, LockhierError> {
        let asked = key_column.clone();
        let row = Spi::connect(|client| {
            let table = client.select(TARGET_QUERY, Some(1), &[rel.into(), key_column.into()])?;
            if table.is_empty() {
                return Ok(None);
            }
            let row = table.first();
            Ok::<_, pgrx::spi::SpiError>(Some((
                row.get::<String>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<String>(3)?.unwrap_or_default(),
                row.get::<Vec<String>>(4)?.unwrap_or_default(),
                row.get::<String>(5)?,
                row.get::<String>(6)?,
                row.get::<String>(7)?,
                row.get::<pg_sys::Oid>(8)?,
            )))
        })
        .unwrap_or_else(|error| panic!("reading the catalog failed: {error}"));
        let Some((qualified, shown, relkind, primary_key, column, column_sql, column_type, type_oid)) = row
        else {
            return Err(LockhierError::NoSuchRelation(rel.to_u32()));
        };
        match relkind.as_str() {
            "r" | "p" => {}
            // Where the rows live decides how long a row lock waits, not lockhier's bound.
            "f" => return Err(LockhierError::ForeignTable(shown)),
            other => return Err(LockhierError::NotATable { table: shown, kind: relkind_name(other) }),
        }
        match (column, column_sql, column_type, type_oid) {
            (Some(column), Some(column_sql), Some(column_type), Some(type_oid)) => {
                let schema = relations::equality_operator_schema(type_oid).unwrap_or("pg_catalog".into());
                let equals = format!("OPERATOR({}.=)", spi::quote_identifier(&schema));
                Ok(Target { relid: rel, qualified, shown, column, column_sql, column_type, equals })
            }
            _ => Err(match asked {
                Some(column) => LockhierError::NoSuchColumn { table: shown, column },
                None if primary_key.is_empty() => LockhierError::NoPrimaryKey(shown),
                None => LockhierError::CompositePrimaryKey { table: shown, columns: primary_key },
            }),
        }
    }
}

/// `pg_class.relkind` in words, for "cannot lock rows of x: it is ..., not a table".
fn relkind_name(relkind: &str) -> &'static str {
    match relkind {
        "v" => "a view",
        "m" => "a materialized view",
        "S" => "a sequence",
        "i" | "I" => "an index",
        "c" => "a composite type",
        "t" => "a TOAST table",
        _ => "not a table",
    }
}
