// The core must load outside Node (a browser build is planned): only src/node/ may touch Node
// built-ins, and only through process.getBuiltinModule, never a static or dynamic import that a
// bundler would try to resolve.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';

const src = path.dirname(fileURLToPath(import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'testing' ? [] : sources(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [full] : [];
  });
}

describe('portability', () => {
  it.each(sources(src).map((f) => [path.relative(src, f), f]))(
    '%s imports no Node built-in at runtime',
    (_name, file) => {
      const text = readFileSync(file, 'utf8');
      const runtimeImports = [...text.matchAll(/^import (?!type )[^;]*from '([^']+)'/gm)].map((m) => m[1]);
      expect(
        runtimeImports.filter((m) => m!.startsWith('node:') || ['fs', 'crypto', 'path', 'util'].includes(m!)),
      ).toEqual([]);
      expect(text).not.toMatch(/(?<!typeof )import\(\s*'node:/);
      expect(text).not.toMatch(/\brequire\(/);
    },
  );
});

describe('without Node built-ins (as in a browser)', () => {
  it('loads, falls back to noble, and still signs, verifies and seals', async () => {
    const original = process.getBuiltinModule;
    Object.defineProperty(process, 'getBuiltinModule', { value: undefined, configurable: true, writable: true });
    try {
      vi.resetModules();
      const lib = await import('./index.js');
      expect(lib.nativeEd25519).toBeUndefined();
      expect(lib.defaultEd25519.name).toBe('noble');
      const { secretKey, publicKey } = lib.generateKeyPair();
      lib.verifyJson(lib.signJson({ a: 1 }, 'x', 'ed25519:1', secretKey), 'x', 'ed25519:1', publicKey);
      const sealingKey = lib.SealingKey.generate();
      const sealed = lib.sealRootKey(secretKey, sealingKey);
      expect(lib.unsealRootKey(sealed, lib.serverNameFromPublicKey(publicKey), sealingKey).publicKey).toEqual(
        publicKey,
      );
      expect(() => lib.sealRootKey(secretKey, sealingKey, { aead: 'native' })).toThrow(
        lib.NativeCryptoUnavailableError,
      );
      await expect(lib.loadOrCreateNodeKey('/tmp/never')).rejects.toThrow(lib.NativeCryptoUnavailableError);
    } finally {
      Object.defineProperty(process, 'getBuiltinModule', { value: original, configurable: true, writable: true });
      vi.resetModules();
    }
  });
});
