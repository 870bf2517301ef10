'use strict';
// lockhier from node-postgres (pg): Client, Pool, err.code and err.detail.
const { test, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { Client, Pool } = require('pg');
const { FieldBusy, updateField } = require('../recipes');

// The server comes from PGHOST/PGPORT/PGUSER, as for psql.
const DB = process.env.LOCKHIER_CLIENTS_NODE_DB || 'lockhier_clients_node';
const IMPORT_CLASSES = "ARRAY['field__deletion', 'field__type_update', 'field__incompatible_update']";
const open = [];

async function connect(applicationName) {
  const client = new Client({ database: DB, application_name: applicationName });
  await client.connect();
  open.push(client);
  return client;
}

// Another process's open transaction holding a lock until it commits.
async function hold(sql, applicationName = 'snapshot #7') {
  const client = await connect(applicationName);
  await client.query('BEGIN');
  await client.query(sql);
  return { client, pid: client.processID, applicationName, release: () => client.query('COMMIT') };
}

function assertNamesHolder(detail, holder) {
  assert.ok(detail.includes(`process ${holder.pid} `), detail);
  assert.ok(detail.includes(`application_name "${holder.applicationName}"`), detail);
}

async function fieldName(id) {
  const observer = await connect('observer');
  const { rows } = await observer.query('SELECT name FROM database_field WHERE id = $1', [id]);
  return rows[0].name;
}

async function blockerPids(blockersCall) {
  const observer = await connect('observer');
  const { rows } = await observer.query(`SELECT pid FROM lockhier.${blockersCall}`);
  return rows.map((row) => row.pid);
}

// Every test's connections end with it, and with them the locks they hold.
afterEach(async () => {
  await Promise.all(open.splice(0).map((client) => client.end().catch(() => {})));
});

test('a snapshot makes a field update fail with who is in the way', async () => {
  const pool = new Pool({ database: DB, application_name: 'field editor', max: 2 });
  try {
    const before = await fieldName(99);
    const snapshot = await hold("SELECT lockhier.lock_application(7, mode => 'share')");
    const err = await updateField(pool, 7, 12, 99, 'renamed during snapshot').catch((e) => e);
    assert.ok(err instanceof FieldBusy, String(err));
    assert.equal(err.cause.code, '55P03');
    assert.equal(err.message, 'operation in progress: cannot lock field 99 (table 12, application 7) for "field__update"');
    assert.match(err.detail, /^Blocked by a share lock on all classes for application 7, held by process \d+ /);
    assertNamesHolder(err.detail, snapshot);
    assert.match(err.cause.hint, /wait =>/);
    assert.equal(await fieldName(99), before);
    await snapshot.release();
    await updateField(pool, 7, 12, 99, 'renamed after snapshot');
    assert.equal(await fieldName(99), 'renamed after snapshot');
  } finally {
    await pool.end();
  }
});

test('an import blocks a field deletion but not a rename', async () => {
  const csvImport = await hold(`SELECT lockhier.lock_table(7, 12, ${IMPORT_CLASSES}, 'share')`, 'import #7/12');
  const editor = await connect('field editor');
  await editor.query('BEGIN');
  await editor.query("SELECT lockhier.lock_field(7, 12, 99, 'field__rename')");
  await editor.query("UPDATE database_field SET name = 'renamed during import' WHERE id = 99");
  await editor.query('COMMIT');
  await editor.query('BEGIN');
  const err = await editor.query("SELECT lockhier.lock_field(7, 12, 99, 'field__deletion')").catch((e) => e);
  await editor.query('ROLLBACK');
  assert.equal(err.code, '55P03');
  assert.equal(err.message, 'operation in progress: cannot lock field 99 (table 12, application 7) for "field__deletion"');
  assert.ok(err.detail.includes('"field__deletion" for table 12 (application 7)'), err.detail);
  assertNamesHolder(err.detail, csvImport);
  assert.equal(await fieldName(99), 'renamed during import');
});

test('try_lock returns false and the transaction stays usable', async () => {
  await hold("SELECT lockhier.lock_field(7, 12, 99, 'field__update')", 'field editor 2');
  const editor = await connect('field editor');
  await editor.query('BEGIN');
  await editor.query("UPDATE database_field SET name = 'first' WHERE id = 100");
  const { rows } = await editor.query("SELECT lockhier.try_lock_field($1, $2, $3, 'field__update') AS got", [7, 12, 99]);
  assert.equal(rows[0].got, false);
  await editor.query("UPDATE database_field SET name = 'second' WHERE id = 101");
  await editor.query('COMMIT');
  assert.deepEqual([await fieldName(100), await fieldName(101)], ['first', 'second']);
});

test('a bounded wait succeeds when the holder commits in time', async () => {
  const other = await hold("SELECT lockhier.lock_field(7, 12, 99, 'field__update')", 'field editor 2');
  // The holder commits once the request below is seen queued behind its lock (in pg_locks).
  const watcher = await connect('observer');
  let seenWaiting = false;
  const released = (async () => {
    while (!seenWaiting) {
      const { rows } = await watcher.query(
        "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND NOT granted) AS waiting");
      seenWaiting = rows[0].waiting;
      if (!seenWaiting) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await other.release();
  })();
  const editor = await connect('field editor');
  await editor.query('BEGIN');
  await editor.query("SELECT lockhier.lock_field(7, 12, 99, 'field__update', wait => $1)", ['30 s']);
  const { rows } = await editor.query('SELECT held_for, scope FROM lockhier.held()');
  await editor.query('COMMIT');
  await released;
  assert.ok(seenWaiting, 'it queued, and was granted when the holder committed');
  assert.deepEqual(rows, [{ held_for: 'transaction', scope: 'field 99 (table 12, application 7)' }]);
});

test('a session lock outlives the transaction in a pooled connection', async () => {
  const pool = new Pool({ database: DB, application_name: 'backup worker', max: 1 });
  const backup = "blockers_application(7, 'app_backup')";
  try {
    let client = await pool.connect();
    await client.query('BEGIN');
    await client.query("SELECT lockhier.session_lock_application(7, 'app_backup')");
    await client.query('COMMIT');
    const pid = client.processID;
    client.release(); // back to the pool
    assert.equal(pool.idleCount, 1);
    assert.deepEqual(await blockerPids(backup), [pid]);
    client = await pool.connect();
    assert.equal(client.processID, pid);
    const { rows } = await client.query("SELECT lockhier.session_unlock_application(7, 'app_backup') AS released");
    assert.equal(rows[0].released, true);
    client.release();
    assert.deepEqual(await blockerPids(backup), []);
  } finally {
    await pool.end();
  }
});

test('the row-lock helper names the table, the key and the holder', async () => {
  const editor = await hold("SELECT lockhier.lock_rows('database_field', ARRAY[99])", 'field editor 2');
  const client = await connect('field editor');
  await client.query('BEGIN');
  const err = await client.query("SELECT lockhier.lock_rows('database_field', ARRAY[99])").catch((e) => e);
  await client.query('ROLLBACK');
  assert.equal(err.code, '55P03');
  assert.equal(err.message, 'operation in progress: cannot lock database_field rows with id 99 for update');
  assert.match(err.detail, /^1 row with id 99 is locked by process \d+ /);
  assertNamesHolder(err.detail, editor);
  await client.query('BEGIN');
  const tried = await client.query("SELECT lockhier.try_lock_rows('database_field', $1::bigint[]) AS got", [[99]]);
  assert.equal(tried.rows[0].got, false);
  const locked = await client.query("SELECT lockhier.lock_rows('database_field', $1::bigint[]) AS n", [[100, 101]]);
  assert.equal(locked.rows[0].n, '2'); // bigint comes back as a string
  await client.query('COMMIT');
});
