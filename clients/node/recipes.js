'use strict';
// Recipe: a field update with node-postgres that fails fast when another operation is in the way.

class FieldBusy extends Error {
  constructor(err) {
    super(err.message, { cause: err }); // "operation in progress: cannot lock field 99 (...) ..."
    this.detail = err.detail; // who is in the way: process, application_name, how long
  }
}

async function updateField(pool, appId, tableId, fieldId, name) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query("SELECT lockhier.lock_field($1, $2, $3, 'field__update')", [appId, tableId, fieldId]);
    await client.query('UPDATE database_field SET name = $1 WHERE id = $2', [name, fieldId]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    if (err.code === '55P03') throw new FieldBusy(err); // lock_not_available
    throw err;
  } finally {
    client.release();
  }
}

module.exports = { FieldBusy, updateField };
