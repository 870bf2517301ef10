'use strict';
// Recipe: an app platform's per-app task locks, with lockhier locks on paths (node-postgres).
//
// It replaces a JSON blob of typed locks (`app_task_<appId>`, `app_backup_<appId>`,
// `box_update`) read, checked and rewritten under a version counter, and polled to wait: each app
// is a path, ['apps', appId], with its UUID as it is. Two tasks of one app collide, tasks of
// different apps run together, a backup runs beside its app's task but not beside another backup
// of it, and the lock ends with the transaction, so no task forgets to release one.

class OperationInProgress extends Error {
  constructor(err) {
    super(err.message, { cause: err }); // 'operation in progress: cannot lock "apps/<uuid>" for "app_task"'
    this.detail = err.detail; // who is in the way: process, application_name, how long
  }
}

// Runs work(client) in a transaction holding `cls` on what `path` names: 'app_task' (one task of
// an app at a time), 'app_backup' (one backup at a time, beside the app's tasks) or 'all' (the
// whole app, nothing else of it). wait: how long to wait for the operation in progress ('30 s').
async function withPathLock(pool, path, cls, work, wait = '0') {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT lockhier.lock_path($1::text[], $2, wait => $3::interval)', [path, cls, wait]);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK');
    if (err.code === '55P03') throw new OperationInProgress(err); // lock_not_available
    throw err;
  } finally {
    client.release();
  }
}

const runAppTask = (pool, appId, work, wait) => withPathLock(pool, ['apps', appId], 'app_task', work, wait);
const backupApp = (pool, appId, work, { wholeApp = false, wait } = {}) =>
  withPathLock(pool, ['apps', appId], wholeApp ? 'all' : 'app_backup', work, wait);
// A platform update: no app task of any app while it runs; backups go on.
const updatePlatform = (pool, work, wait) => withPathLock(pool, ['apps'], 'app_task', work, wait);

module.exports = { OperationInProgress, runAppTask, backupApp, updatePlatform };
