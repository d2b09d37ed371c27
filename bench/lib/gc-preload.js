// Loaded into a server process under bench (`node --expose-gc --import <this file> main.js`): on SIGUSR2 it
// runs a full garbage collection and prints one line with the process's memory, which the bench reads.
// Nothing else of the server changes.
process.on('SIGUSR2', () => {
  globalThis.gc?.();
  globalThis.gc?.();
  const m = process.memoryUsage();
  process.stderr.write(
    `polyhome-bench-memory ${JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, external: m.external, gc: typeof globalThis.gc === 'function' })}\n`,
  );
});
