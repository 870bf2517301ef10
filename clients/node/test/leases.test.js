'use strict';
// Leases from node-postgres: the task runner of task_runner.js. Its own database (clients/run.sh
// makes it): a lease outlives the test that took it.
const { test, afterEach, after } = require('node:test');
const assert = require('node:assert/strict');
const { Pool } = require('pg');
const { TaskFailed, runTask } = require('../task_runner');

const DB = process.env.LOCKHIER_CLIENTS_NODE_LEASES_DB || 'lockhier_clients_node_leases';
const pool = new Pool({ database: DB, application_name: 'task runner', max: 3 });

// Task 101 imports into table 12: field deletions and type changes kept out, and field 200 of
// table 13 its own.
const IMPORT_LEASES = [
  { level: 'table', ids: [7, 12], classes: ['field__deletion', 'field__type_update'], mode: 'share' },
  { level: 'field', ids: [7, 13, 200] },
];

async function leases() {
  const { rows } = await pool.query('SELECT token, owner, scope, mode FROM lockhier.leases ORDER BY token');
  return rows;
}

async function deleteField(id) { // an editor, on a connection of its own
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query("SELECT lockhier.lock_field(7, 12, $1, 'field__deletion')", [id]);
    await client.query('DELETE FROM database_field WHERE id = $1', [id]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  } finally {
    client.release();
  }
}

afterEach(async () => {
  await pool.query('SELECT lockhier.release_lease(token) FROM lockhier.leases');
});
after(() => pool.end());

test("a crashing task's leases are released by the runner, and another task then takes them", async () => {
  const err = await runTask(pool, 101, IMPORT_LEASES, async ({ owner, tokens }) => {
    assert.equal(owner, 'task 101');
    assert.deepEqual((await leases()).map((l) => [l.token, l.owner, l.scope, l.mode]), [
      [tokens[0], 'task 101', 'table 12 (application 7)', 'share'],
      [tokens[1], 'task 101', 'field 200 (table 13, application 7)', 'exclusive'],
    ]);
    // While it runs, another task wanting field 200 is refused, the lease's owner named...
    const refused = await runTask(pool, 102, [{ level: 'field', ids: [7, 13, 200] }], async () => {
      assert.fail('task 102 ran beside task 101');
    }).catch((e) => e);
    assert.ok(refused instanceof TaskFailed, String(refused));
    assert.equal(refused.cause.code, '55P03');
    assert.match(refused.cause.detail, new RegExp(`held by lease ${tokens[1]} of owner "task 101"`));
    assert.equal(refused.leasesReleased, 0); // it had taken none
    // ...and so is an editor deleting a field of table 12.
    const editor = await deleteField(99).catch((e) => e);
    assert.equal(editor.code, '55P03');
    assert.match(editor.detail, new RegExp(`held by lease ${tokens[0]} of owner "task 101"`));
    throw new Error('out of memory'); // the crash
  }).catch((e) => e);
  assert.ok(err instanceof TaskFailed, String(err));
  assert.equal(err.owner, 'task 101');
  assert.equal(err.cause.message, 'out of memory');
  assert.equal(err.leasesReleased, 2);
  assert.deepEqual(await leases(), []);
  // Task 102 now takes field 200, and the editor deletes field 99.
  const result = await runTask(pool, 102, [{ level: 'field', ids: [7, 13, 200] }], async ({ owner, tokens }) => {
    assert.deepEqual((await leases()).map((l) => [l.token, l.owner]), [[tokens[0], owner]]);
    return 'done';
  });
  assert.equal(result, 'done');
  assert.deepEqual(await leases(), []); // released when it ended too
  await deleteField(99);
});

test('a task refused its second lease gives back its first', async () => {
  await runTask(pool, 201, [{ level: 'field', ids: [7, 13, 201], mode: 'share' }], async () => {
    const err = await runTask(pool, 202, [
      { level: 'table', ids: [7, 12], classes: ['field__deletion'], mode: 'share' },
      { level: 'table', ids: [7, 13], ttl: '10 min' }, // refused: task 201 holds a field of it
    ], async () => assert.fail('task 202 ran')).catch((e) => e);
    assert.ok(err instanceof TaskFailed, String(err));
    assert.equal(err.cause.code, '55P03');
    assert.match(err.cause.detail, /of owner "task 201"/);
    assert.equal(err.leasesReleased, 1);
    assert.deepEqual((await leases()).map((l) => l.owner), ['task 201']);
  });
  assert.deepEqual(await leases(), []);
});
