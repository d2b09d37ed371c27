// Investigation helper (not a bench suite), with bench/probe-memory.mjs and bench/heap-diff.mjs:
//   [UP=6] [KEEP=9] node bench/heap-retainers.mjs idle.heapsnapshot active.heapsnapshot "<type>\t<name>" [depth] [top]
// For the objects of that kind in the second snapshot and not in the first (snapshot node ids are stable within one
// process), the shortest retainer path up to an object the first snapshot already held, grouped (array indices
// folded), with UP more retainers above that object (its owner: a class field, a module's context).
import { readFileSync } from 'node:fs';

function load(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  return snap;
}
const idle = load(process.argv[2]);
const idleIds = new Set();
{
  const nf = idle.snapshot.meta.node_fields;
  const N = nf.length;
  const iId = nf.indexOf('id');
  for (let i = 0; i < idle.nodes.length; i += N) idleIds.add(idle.nodes[i + iId]);
}
const snap = load(process.argv[3]);
const [wantType, wantName] = process.argv[4].split('\t');
const depth = Number(process.argv[5] ?? 8);
const top = Number(process.argv[6] ?? 15);
const m = snap.snapshot.meta;
const nf = m.node_fields;
const N = nf.length;
const ef = m.edge_fields;
const E = ef.length;
const nodeTypes = m.node_types[0];
const edgeTypes = m.edge_types[0];
const iType = nf.indexOf('type');
const iName = nf.indexOf('name');
const iId = nf.indexOf('id');
const iSize = nf.indexOf('self_size');
const iEdges = nf.indexOf('edge_count');
const eType = ef.indexOf('type');
const eName = ef.indexOf('name_or_index');
const eTo = ef.indexOf('to_node');
const { nodes, edges, strings } = snap;
const count = nodes.length / N;
// reverse edges
const retainers = Array.from({ length: count }, () => []);
let e = 0;
for (let n = 0; n < count; n++) {
  const ec = nodes[n * N + iEdges];
  for (let k = 0; k < ec; k++, e += E) {
    const t = edgeTypes[edges[e + eType]];
    if (t === 'weak' || t === 'shortcut') continue;
    const to = edges[e + eTo] / N;
    const nameOrIndex = t === 'element' || t === 'hidden' ? `[${edges[e + eName]}]` : strings[edges[e + eName]];
    retainers[to].push([n, t, nameOrIndex]);
  }
}
const label = (n) => {
  const t = nodeTypes[nodes[n * N + iType]];
  const name = strings[nodes[n * N + iName]];
  return `${t}:${String(name).slice(0, 50)}`;
};
const paths = new Map();
let matched = 0;
let bytes = 0;
for (let n = 0; n < count; n++) {
  if (nodeTypes[nodes[n * N + iType]] !== wantType) continue;
  if (wantName !== undefined && !String(strings[nodes[n * N + iName]]).startsWith(wantName)) continue;
  if (idleIds.has(nodes[n * N + iId])) continue;
  matched++;
  bytes += nodes[n * N + iSize];
  // shortest retainer path up to an object that was already there idle (or a root)
  const prev = new Map([[n, null]]);
  let queue = [n];
  let found;
  for (let d = 0; d < depth && found === undefined && queue.length > 0; d++) {
    const nextQ = [];
    for (const c of queue) {
      for (const [r, t, nm] of retainers[c]) {
        if (prev.has(r)) continue;
        prev.set(r, [c, t, nm]);
        if (idleIds.has(nodes[r * N + iId]) || retainers[r].length === 0) {
          found = r;
          break;
        }
        nextQ.push(r);
      }
      if (found !== undefined) break;
    }
    queue = nextQ;
  }
  const parts = [];
  if (found === undefined) parts.push('(no old retainer within depth)');
  else {
    let cur = found;
    while (prev.get(cur) !== null) {
      const [c, t, nm] = prev.get(cur);
      parts.push(`${label(cur)}.${t === 'element' ? '[]' : nm}`);
      cur = c;
    }
  }
  if (found !== undefined) {
    let cur = found;
    const up = [];
    const seenUp = new Set([cur]);
    for (let d = 0; d < Number(process.env.UP ?? 0); d++) {
      const rs = retainers[cur].filter(([r]) => !seenUp.has(r));
      if (rs.length === 0) break;
      const [r, t, nm] = rs.find(([, t]) => t === 'property' || t === 'context') ?? rs[0];
      up.push(`${label(r)}.${t === 'element' ? '[]' : nm}`);
      seenUp.add(r);
      cur = r;
    }
    parts.unshift(...up.reverse().map((x) => 'UP ' + x));
  }
  const key = parts
    .map((p) => p.replace(/\.\d+$/, '.#').replace(/\[\d+\]/g, '[]'))
    .slice(0, Number(process.env.KEEP ?? 3))
    .join(' <- ');
  const p = paths.get(key) ?? { count: 0, size: 0 };
  p.count++;
  p.size += nodes[n * N + iSize];
  paths.set(key, p);
}
console.log(`${matched} new objects, ${(bytes / 1024).toFixed(1)} KiB self`);
for (const [k, v] of [...paths].sort((a, b) => b[1].size - a[1].size).slice(0, top)) {
  console.log(`${v.count} ${(v.size / 1024).toFixed(1)} KiB\n   ${k.split(' <- ').join('\n     <- ')}`);
}
