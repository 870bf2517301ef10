//! SQL behaviour, run inside PostgreSQL by `cargo pgrx test`. Each file holds a
//! `#[pg_schema] mod tests`, the schema pgrx's runner calls the tests in.
mod api;
