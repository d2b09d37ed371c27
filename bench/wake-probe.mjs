// temporary probe: phases of the /sync wake-up on B
import { performance } from 'node:perf_hooks';
import { ChangeFeedService } from '@polyhome/matrix';
const marks = [];
globalThis.__marks = marks;
const mark = (m) => { if (globalThis.__t0 !== undefined) marks.push([m, +(performance.now() - globalThis.__t0).toFixed(1)]); };
const P = ChangeFeedService.prototype;
for (const name of ['write', 'settle', 'wake']) {
  const orig = P[name];
  P[name] = function (...args) {
    mark(`${name}:start`);
    const r = orig.apply(this, args);
    if (r && typeof r.then === 'function') return r.then((v) => { mark(`${name}:end`); return v; });
    mark(`${name}:end`);
    return r;
  };
}
const { SyncService } = await import('../libs/matrix/dist/sync/sync.service.js');
const S = SyncService.prototype;
for (const name of ['build']) {
  const orig = S[name];
  S[name] = async function (...args) { mark(`sync.${name}:start`); const r = await orig.apply(this, args); mark(`sync.${name}:end`); return r; };
}
const suite = await import('./suites/matrix.js');
process.env.BENCH_MATRIX_BACKUP_KEYS = '10';
const rows = await suite.run({ progress: () => {} });
console.table(rows);
process.exit(0);
