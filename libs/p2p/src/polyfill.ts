// Node 20 lacks Promise.withResolvers, which libp2p 3 calls; Node >= 22 has it. Every entry point that
// loads libp2p imports `@polyhome/p2p/polyfill` first (the server, the CLI, the test setup, the benches).
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
