// A bench home in a worker thread of its own: `prepareHome` (memory-home.js) behind messages, so that each bench
// home has its own event loop, as each client home has its own process. A bench process running twenty homes and
// their thousand sync sessions on one loop stalled for seconds, and its homes failed their own libp2p pings.
//
//   const home = await startHomeWorker('hosting-active-3', documents, 1);  // started, ops signed
//   const result = await home.push(peerAddr, timeoutMs);                  // { total, acked, aborted, error }
//   const loop = await home.stop();                                       // the worker's event-loop delay, ms
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { benchHome } from './accounts.js';
import { prepareHome } from './memory-home.js';

if (!isMainThread && workerData?.kind === 'polyhome-bench-home') {
  const { label, documents, opsPerAccount } = workerData;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  const home = await prepareHome(benchHome(label).secretKey, documents, opsPerAccount);
  parentPort.on('message', async (message) => {
    if (message.kind === 'push') {
      loop.enable();
      const result = await home.push(message.peerAddr, message.timeoutMs);
      loop.disable();
      parentPort.postMessage({ kind: 'pushed', result });
    } else if (message.kind === 'stop') {
      await home.stop();
      parentPort.postMessage({
        kind: 'stopped',
        loop: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
      });
      parentPort.close();
    }
  });
  parentPort.postMessage({ kind: 'ready' });
}

/** Starts a bench home (the key of `benchHome(label)`) in a worker thread; resolves once its ops are signed. */
export async function startHomeWorker(label, documents, opsPerAccount = 1) {
  const worker = new Worker(new URL(import.meta.url), {
    workerData: { kind: 'polyhome-bench-home', label, documents, opsPerAccount },
  });
  const next = (kind) =>
    new Promise((resolve, reject) => {
      const onMessage = (message) => {
        if (message.kind !== kind) return;
        worker.off('message', onMessage);
        worker.off('error', reject);
        resolve(message);
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
  await next('ready');
  return {
    async push(peerAddr, timeoutMs) {
      const answer = next('pushed');
      worker.postMessage({ kind: 'push', peerAddr, timeoutMs });
      return (await answer).result;
    },
    async stop() {
      const answer = next('stopped');
      worker.postMessage({ kind: 'stop' });
      const { loop } = await answer;
      await worker.terminate();
      return loop;
    },
  };
}
