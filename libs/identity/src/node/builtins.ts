// The only door to Node built-ins. `process.getBuiltinModule` (Node >= 20.16) is synchronous and is
// a plain property lookup, so this module (and everything above it) still loads in a browser or a
// bundler: nothing here is a static `import 'node:...'` that a bundler would try to resolve.
import { NativeCryptoUnavailableError } from '../errors.js';

/** Node's crypto module, or undefined when the runtime is not Node (browser, worker without Node APIs). */
export type NodeCrypto = typeof import('node:crypto');
/** Node's fs module. */
export type NodeFs = typeof import('node:fs');
/** Node's path module. */
export type NodePath = typeof import('node:path');

interface BuiltinLoader {
  getBuiltinModule?: (id: string) => unknown;
}

function load(id: string): unknown {
  const proc = (globalThis as { process?: BuiltinLoader }).process;
  return typeof proc?.getBuiltinModule === 'function' ? proc.getBuiltinModule(id) : undefined;
}

/** Node's crypto module when the runtime has it, else undefined (the noble path is used then). */
export function nodeCrypto(): NodeCrypto | undefined {
  return load('node:crypto') as NodeCrypto | undefined;
}

/** Node's fs and path modules; throws NativeCryptoUnavailableError outside Node. */
export function nodeFileSystem(): { fs: NodeFs; path: NodePath } {
  const fs = load('node:fs') as NodeFs | undefined;
  const path = load('node:path') as NodePath | undefined;
  if (fs === undefined || path === undefined) throw new NativeCryptoUnavailableError('Key files');
  return { fs, path };
}
