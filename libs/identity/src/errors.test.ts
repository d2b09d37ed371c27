import { describe, expect, it } from 'vitest';
import * as errors from './errors.js';

type Constructor = new (...args: unknown[]) => errors.IdentityError;

const classes = Object.entries(errors as unknown as Record<string, unknown>).filter(
  (entry): entry is [string, Constructor] =>
    typeof entry[1] === 'function' && (entry[1] as Constructor).prototype instanceof errors.IdentityError,
);

describe('error classes', () => {
  it('exist, one per code', () => {
    const codes = classes.map(([, C]) => new C('a', 1, 2).code);
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes.length).toBeGreaterThanOrEqual(30);
  });

  it.each(classes)('%s is named after its class and is an IdentityError and an Error', (name, C) => {
    const error = new C('a', 1, 2);
    expect(error.name).toBe(name);
    expect(error).toBeInstanceOf(errors.IdentityError);
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toMatch(/^[A-Z][A-Z0-9_]+$/);
    expect(error.message.length).toBeGreaterThan(0);
  });
});
