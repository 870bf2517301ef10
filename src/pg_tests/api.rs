#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn smoke() {
        Spi::run("SELECT lockhier.lock_field(7, 12, 99, 'field__update')").unwrap();
    }
}
