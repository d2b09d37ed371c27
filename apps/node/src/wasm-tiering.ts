// The embedded database is PostgreSQL compiled to WebAssembly. V8 runs its functions first from a quick baseline
// compile (Liftoff), and compiles those that run hot again, optimized (TurboFan), on a background thread. One of
// them goes hot while PGlite opens, and its optimized compile takes seconds of a core and up to 600 MB; a process
// that exits meanwhile waits for that compile to finish. `polyhome init` spent 2 to 4 s of its 5 to 10 s in that
// wait at exit (issue 14). A command that opens the database and exits gains nothing from the optimized code.
import { setFlagsFromString } from 'node:v8';

/**
 * Keeps WebAssembly compiled after this call on the baseline tier: the budget a function runs before it is
 * compiled again optimized becomes out of reach for a short command. For commands that exit when done, not for
 * `start`, whose database works for hours. V8 reads the budget when a module is instantiated, so call it before
 * the database opens.
 */
export function keepWasmOnBaselineTier(): void {
  setFlagsFromString('--wasm-tiering-budget=1000000000');
}
