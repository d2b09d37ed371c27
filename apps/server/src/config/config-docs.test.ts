import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CONFIG_SCHEMA } from './config.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const VARIABLES = Object.keys(CONFIG_SCHEMA);

/** The variables named in the first column of the README's configuration table. */
function readmeTableVariables(): Set<string> {
  const readme = readFileSync(`${ROOT}README.md`, 'utf8');
  const section = readme.split(/^## Configuration$/m)[1]?.split(/^## /m)[0] ?? '';
  return new Set([...section.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]!));
}

/** The variables deploy/env.example sets or shows commented out (`NAME=` or `#NAME=` at a line's start). */
function envExampleVariables(): Set<string> {
  const example = readFileSync(`${ROOT}deploy/env.example`, 'utf8');
  return new Set([...example.matchAll(/^#?([A-Z0-9_]+)=/gm)].map((m) => m[1]!));
}

describe('configuration documents', () => {
  it('the schema is read (a sanity check on the test itself)', () => {
    expect(VARIABLES).toEqual(expect.arrayContaining(['PORT', 'P2P_BOOTSTRAP', 'SEALING_KEY']));
  });

  it("every variable of the schema has a row in the README's configuration table", () => {
    const documented = readmeTableVariables();
    expect(VARIABLES.filter((v) => !documented.has(v))).toEqual([]);
  });

  it('every variable of the schema is in deploy/env.example', () => {
    const documented = envExampleVariables();
    expect(VARIABLES.filter((v) => !documented.has(v))).toEqual([]);
  });

  it('neither document names a variable the schema does not have', () => {
    const known = new Set(VARIABLES);
    expect([...readmeTableVariables()].filter((v) => !known.has(v))).toEqual([]);
    expect([...envExampleVariables()].filter((v) => !known.has(v))).toEqual([]);
  });
});
