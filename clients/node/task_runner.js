'use strict';
// Recipe: a task runner (node-postgres) that gives each task a lease owner of its own,
// "task <id>", takes the task's leases before it runs, and releases every lease the task holds
// when it ends, done or crashed: by the owner's name, from any connection of the pool.

class TaskFailed extends Error {
  constructor(owner, leasesReleased, cause) {
    super(`${owner} failed: ${cause.message}`, { cause }); // cause.code '55P03': a lease was refused
    this.owner = owner;
    this.leasesReleased = leasesReleased; // how many leases the runner released for it
  }
}

const IDS = { global: 0, application: 1, table: 2, field: 3 }; // ids each level takes

// lease: { level: 'table', ids: [7, 12], classes: ['field__deletion'], mode: 'share', ttl: '2 min' }
async function takeLease(pool, owner, { level, ids, classes = ['all'], mode = 'exclusive', ttl = '2 min' }) {
  if (IDS[level] !== ids.length) throw new TypeError(`a ${level} lease takes ${IDS[level]} ids`);
  const at = ids.map((_, i) => `$${i + 1}`); // $1, $2...: the ids, then the owner and the rest
  const n = ids.length;
  const { rows } = await pool.query(
    `SELECT lockhier.lease_${level}(${[...at, `$${n + 1}`].join(', ')}, $${n + 2}::text[], $${n + 3}, $${n + 4}::interval) AS token`,
    [...ids, owner, classes, mode, ttl]);
  return rows[0].token; // a bigint: a string
}

async function releaseLeases(pool, owner) {
  const { rows } = await pool.query('SELECT lockhier.release_leases($1) AS released', [owner]);
  return rows[0].released;
}

// Runs work({ owner, tokens }) holding the task's leases; its result, or a TaskFailed.
async function runTask(pool, id, leases, work) {
  const owner = `task ${id}`;
  let result;
  try {
    const tokens = [];
    for (const lease of leases) tokens.push(await takeLease(pool, owner, lease));
    result = await work({ owner, tokens });
  } catch (err) {
    // Crashed, or refused a lease part-way: nothing it took outlives it.
    throw new TaskFailed(owner, await releaseLeases(pool, owner), err);
  }
  await releaseLeases(pool, owner);
  return result;
}

module.exports = { TaskFailed, runTask };
