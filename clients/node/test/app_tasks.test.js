'use strict';
// Locks on paths from node-postgres: the app platform's per-app task locks of app_tasks.js.
// The task in progress is a transaction of its own connection; what runs beside it runs inside
// its work, so the order is the code's, and a waiting task is seen queued in pg_locks.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { Pool } = require('pg');
const { OperationInProgress, runAppTask, backupApp, updatePlatform } = require('../app_tasks');

const DB = process.env.LOCKHIER_CLIENTS_NODE_DB || 'lockhier_clients_node';
const APP = 'c0a8f5e2-9b1d-4a7e-8f00-1c2d3e4f5a6b';
const OTHER_APP = '5f3c1a9e-0d2b-4c6f-9e8a-7b1d2c3e4f50';
const platform = new Pool({ database: DB, application_name: 'platform', max: 4 });
const waiter = new Pool({ database: DB, application_name: 'waiting task', max: 1 });
after(() => Promise.all([platform.end(), waiter.end()]));

const refused = (promise) => promise.then(() => assert.fail('ran beside the operation in progress'), (e) => e);

async function scopesHeld(client) {
  const { rows } = await client.query('SELECT scope, classes FROM lockhier.held() ORDER BY scope');
  return rows.map((r) => `${r.scope} ${r.classes}`);
}

test("two tasks of one app collide, with the app's path and the task in the way named", async () => {
  const ran = [];
  await runAppTask(platform, APP, async (task) => {
    assert.deepEqual(await scopesHeld(task), [`"apps/${APP}" app_task`]);
    const err = await refused(runAppTask(platform, APP, async () => {}));
    assert.ok(err instanceof OperationInProgress, String(err));
    assert.equal(err.cause.code, '55P03');
    assert.equal(err.message, `operation in progress: cannot lock "apps/${APP}" for "app_task"`);
    assert.ok(err.detail.startsWith(`Blocked by an exclusive lock on "app_task" for "apps/${APP}", held by process`
      + ` ${task.processID} (application_name "platform")`), err.detail);
    // Another app's task runs meanwhile, as does this app's backup (one at a time)...
    ran.push(await runAppTask(platform, OTHER_APP, async () => 'other app task'));
    ran.push(await backupApp(platform, APP, async () => {
      const second = await refused(backupApp(platform, APP, async () => {}));
      assert.equal(second.message, `operation in progress: cannot lock "apps/${APP}" for "app_backup"`);
      return 'backup';
    }));
    // ...but not a backup of the whole app.
    const whole = await refused(backupApp(platform, APP, async () => {}, { wholeApp: true }));
    assert.equal(whole.message, `operation in progress: cannot lock "apps/${APP}" for all classes`);
  });
  assert.deepEqual(ran, ['other app task', 'backup']);
  // Its lock ended with its transaction: the next task of the app runs.
  assert.equal(await runAppTask(platform, APP, async () => 'next'), 'next');
});

test("a platform update keeps every app's tasks out, not their backups", async () => {
  await updatePlatform(platform, async () => {
    for (const app of [APP, OTHER_APP]) {
      const err = await refused(runAppTask(platform, app, async () => {}));
      assert.equal(err.message, `operation in progress: cannot lock "apps/${app}" for "app_task"`);
      assert.match(err.detail, /^Blocked by an exclusive lock on "app_task" for "apps", held by process /);
    }
    assert.equal(await backupApp(platform, APP, async () => 'backed up'), 'backed up');
  });
  // And an app's task in progress keeps the update out.
  await runAppTask(platform, OTHER_APP, async () => {
    const err = await refused(updatePlatform(platform, async () => {}));
    assert.equal(err.message, 'operation in progress: cannot lock "apps" for "app_task"');
  });
});

test('a task that waits runs once the task in progress has committed', async () => {
  const events = [];
  let second;
  await runAppTask(platform, APP, async () => {
    second = runAppTask(waiter, APP, async () => events.push('second task ran'), '30 s');
    // Outside the task's transaction, which would see pg_stat_activity as it was when it first looked.
    for (let start = Date.now(); ; await new Promise((resolve) => setTimeout(resolve, 50))) {
      const { rows } = await platform.query(
        "SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
        + " WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name = 'waiting task'");
      if (rows[0].n > 0) break;
      assert.ok(Date.now() - start < 60000, 'the second task never queued for the app');
    }
    events.push('first task committing');
  });
  await second;
  assert.deepEqual(events, ['first task committing', 'second task ran']);
});
