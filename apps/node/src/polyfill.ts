// Node 20 lacks Promise.withResolvers, which libp2p 3 calls; Node >= 22 has it. Imported first by cli.ts.
// A copy of apps/server/src/polyfill.ts (15 lines): apps/node must not import apps/server.
if (typeof (Promise as { withResolvers?: unknown }).withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T>() {
      let resolve!: (value: T | PromiseLike<T>) => void;
      let reject!: (reason?: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}
export {};
