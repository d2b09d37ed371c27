// Investigation helper (not a bench suite): the hosting bench's server and accounts (the documents it cached under
// bench/results/cache: run `BENCH_HOSTING_SIZES=10000 npm run bench -- hosting` once first), with the inspector open on
// 127.0.0.1. Prints, idle and after the active accounts pushed their op, RSS, V8's heap by space (size / used /
// physical, MiB), and /proc/<pid>/smaps by kind of anonymous mapping; writes heap snapshots for bench/heap-diff.mjs.
//   node bench/probe-memory.mjs <accounts> <active> <outdir>
// PROBE_SNAPSHOTS=0: no snapshot (taking one changes RSS: read the figures of a run without). PROBE_EVERY=1: memory
// after every bench home (a full GC each time). PROBE_WAITS=10,30: again after that many seconds. PROBE_EVAL: an
// expression evaluated in the server at the end. PROBE_NODE_OPTIONS: added to the server's NODE_OPTIONS;
// BENCH_SERVER_NODE_FLAGS as for the benches (bench/lib/server.js).
/* global WebSocket */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeNodeKeyFile } from '@polyhome/identity';
import { openStorage } from '@polyhome/storage';
import { benchHome, hostInStorage } from './lib/accounts.js';
import { pushOneOpEach } from './lib/memory-home.js';
import { scratchDatabase } from './lib/pg.js';
import { freePort, startServer } from './lib/server.js';

const [size, activeCount, outDir] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const serverHome = benchHome('hosting-server', 'server');
const activeHome = (k) => benchHome(`hosting-active-${k}`);
const tag = serverHome.peerId.slice(-8);
const file = path.join('bench/results/cache', `hosting-10000-${tag}.ndjson`);
const all = (await readFile(file, 'utf8'))
  .split('\n')
  .filter(Boolean)
  .slice(0, size)
  .map((l) => JSON.parse(l));

const db = await scratchDatabase('memprobe');
const dir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-memprobe-'));
await writeNodeKeyFile(path.join(dir, 'node.key'), serverHome.secretKey);
const storage = await openStorage({ databaseUrl: db.url, dataDir: os.tmpdir() });
await hostInStorage(storage.dataSource, all, () => undefined);
await storage.close();
const inspectPort = await freePort();
const server = await startServer({
  DATABASE_URL: db.url,
  DATA_DIR: dir,
  NODE_OPTIONS: `--inspect=127.0.0.1:${inspectPort} ${process.env.PROBE_NODE_OPTIONS ?? ''}`,
});

const list = await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json();
const ws = new WebSocket(list[0].webSocketDebuggerUrl);
await new Promise((r) => ws.addEventListener('open', r, { once: true }));
let id = 0;
const pending = new Map();
let chunkSink;
ws.addEventListener('message', (ev) => {
  const msg = JSON.parse(ev.data);
  if (msg.method === 'HeapProfiler.addHeapSnapshotChunk') chunkSink?.write(msg.params.chunk);
  else if (msg.id !== undefined) {
    const p = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error) p.reject(new Error(JSON.stringify(msg.error)));
    else p.resolve(msg.result);
  }
});
const call = (method, params = {}) =>
  new Promise((resolve, reject) => {
    const n = ++id;
    pending.set(n, { resolve, reject });
    ws.send(JSON.stringify({ id: n, method, params }));
  });
const evaluate = async (expression) =>
  (await call('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true, includeCommandLineAPI: true }))
    .result.value;

async function snapshot(name) {
  await call('HeapProfiler.collectGarbage');
  const out = path.join(outDir, `${name}.heapsnapshot`);
  chunkSink = createWriteStream(out);
  await call('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
  await new Promise((r) => chunkSink.end(r));
  chunkSink = undefined;
  return out;
}
async function memory(name) {
  const m = await server.memory();
  const inside = await evaluate(
    `(() => { const m = process.memoryUsage(); const h = require('v8').getHeapStatistics(); return { ...m, total_heap_size: h.total_heap_size, malloced: h.malloced_memory, peak_malloced: h.peak_malloced_memory, external_memory: h.external_memory, spaces: Object.fromEntries(require('v8').getHeapSpaceStatistics().map((x) => [x.space_name, [x.space_size >> 10, x.space_used_size >> 10, x.physical_space_size >> 10]])) }; })()`,
  ).catch((e) => ({ error: String(e) }));
  const status = await readFile(`/proc/${server.pid}/status`, 'utf8');
  const line = {
    name,
    rss: m.rss,
    heapUsed: m.heapUsed,
    inside,
    vm: status.match(/Vm(RSS|Data|Size).*|Rss\w+.*|Threads.*/g),
  };
  line.smaps = await smaps(server.pid);
  console.log(JSON.stringify(line));
  await writeFile(path.join(outDir, `${name}.memory.json`), JSON.stringify(line, null, 1));
  return line;
}
// Anonymous memory by kind of mapping: [heap] (main arena), 64 MiB-aligned thread arenas (rw part beside a
// ---p reserve summing to 64 MiB), and other anonymous mappings (V8 heap pages, mmapped large mallocs).
async function smaps(pid) {
  const text = await readFile(`/proc/${pid}/smaps`, 'utf8');
  const maps = [];
  let cur;
  let lazy = 0;
  let huge = 0;
  for (const l of text.split('\n')) {
    const h = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(l);
    if (h) {
      cur = { start: BigInt('0x' + h[1]), end: BigInt('0x' + h[2]), perm: h[3], name: h[4], rss: 0 };
      maps.push(cur);
    } else if (cur && l.startsWith('Rss:')) cur.rss = Number(/(\d+)/.exec(l)[1]);
    else if (l.startsWith('LazyFree:')) lazy += Number(/(\d+)/.exec(l)[1]);
    else if (l.startsWith('AnonHugePages:')) huge += Number(/(\d+)/.exec(l)[1]);
  }
  const out = { lazy, huge, heap: 0, arenas: 0, arenaCount: 0, anonOther: 0, anonOtherCount: 0, file: 0, bigAnon: [] };
  const M64 = 64n * 1024n * 1024n;
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i];
    if (m.name === '[heap]') out.heap += m.rss;
    else if (m.name === '') {
      const next = maps[i + 1];
      const arena =
        m.start % M64 === 0n &&
        m.perm.startsWith('rw') &&
        next &&
        next.start === m.end &&
        next.perm.startsWith('---') &&
        next.end - m.start === M64;
      if (arena) {
        out.arenas += m.rss;
        out.arenaCount++;
      } else {
        out.anonOther += m.rss;
        out.anonOtherCount++;
        if (m.rss > 4096) out.bigAnon.push(`${m.perm}:${Number(m.end - m.start) >> 10}k:rss${m.rss}k`);
      }
    } else if (!m.name.startsWith('[')) out.file += m.rss;
  }
  return out;
}
globalThis.probe = { evaluate, snapshot, memory, server };

try {
  await new Promise((r) => setTimeout(r, 3_000));
  await memory('idle');
  if (process.env.PROBE_SNAPSHOTS !== '0') await snapshot('idle');
  await memory('idle-after-snapshot');
  const actives = all.filter((_, i) => i % 10 === 0).slice(0, activeCount);
  const groups = [];
  for (let i = 0; i < actives.length; i += 50) groups.push(actives.slice(i, i + 50));
  const t0 = Date.now();
  const peak = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0 };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const m = await evaluate('process.memoryUsage()').catch(() => undefined);
      for (const k of Object.keys(peak)) peak[k] = Math.max(peak[k], m?.[k] ?? 0);
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  for (let g = 0; g < groups.length; g++) {
    const r = await pushOneOpEach(
      activeHome(g).secretKey,
      groups[g].map((a) => a.document),
      server.p2pAddr,
      60_000,
    );
    if (r.error) console.log('home', g, r.error);
    if (process.env.PROBE_EVERY === '1') await memory(`after-${g}`);
  }
  sampling = false;
  await sampler;
  console.log(
    `pushed ${actives.length} in ${(Date.now() - t0) / 1000} s; peak MiB ${JSON.stringify(Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, v >> 20])))}`,
  );
  await memory('active');
  for (const wait of (process.env.PROBE_WAITS ?? '').split(',').filter(Boolean).map(Number)) {
    await new Promise((r) => setTimeout(r, wait * 1000));
    await memory(`active+${wait}s`);
  }
  if (process.env.PROBE_EVAL) console.log(JSON.stringify(await evaluate(process.env.PROBE_EVAL)));
  if (process.env.PROBE_SNAPSHOTS !== '0') await snapshot('active');
  await memory('active-after-snapshot');
} finally {
  ws.close();
  await server.stop();
  await rm(dir, { recursive: true, force: true });
  await db.drop();
}
