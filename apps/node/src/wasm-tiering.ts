// The embedded database is PostgreSQL compiled to WebAssembly. V8 runs its functions first from a quick baseline
// compile (Liftoff), and compiles those that run hot again, optimized (TurboFan), on a background thread. One of
// them goes hot while PGlite opens, and its optimized compile takes seconds of a core and up to 600 MB; a process
// that exits meanwhile waits for that compile to finish. `polyhome init` spent 2 to 4 s of its 5 to 10 s in that
// wait at exit (issue 14). A command that opens the database and exits gains nothing from the optimized code.
import { setFlagsFromString } from 'node:v8';

// Set with the flag below: this process runs a command that opens the database, answers and exits.
let shortCommand = false;

/**
 * Keeps WebAssembly compiled after this call on the baseline tier: the budget a function runs before it is
 * compiled again optimized becomes out of reach for a short command. For commands that exit when done, not for
 * `start`, whose database works for hours. V8 reads the budget when a module is instantiated, so call it before
 * the database opens.
 */
export function keepWasmOnBaselineTier(): void {
  setFlagsFromString('--wasm-tiering-budget=1000000000');
  shortCommand = true;
}

/**
 * PostgreSQL's shared_buffers for this process's embedded database: a short command opens it with 16MB instead
 * of the data directory's 128MB (about 0.3 to 1 s and 115 MiB less to open it on the development machine);
 * undefined for `start`, which keeps the larger cache.
 */
export function embeddedSharedBuffers(): string | undefined {
  return shortCommand ? '16MB' : undefined;
}
