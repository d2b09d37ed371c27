import { BadRequestException, ValidationPipe, type ArgumentMetadata } from '@nestjs/common';

/** Keys that Nest's ValidationPipe and class-transformer delete from a body, at any depth, without a word. */
const DROPPED_KEYS = ['__proto__', 'constructor', 'prototype'] as const;

/**
 * The first key of DROPPED_KEYS found anywhere in a parsed JSON value, as a path (`$.document.revoked.__proto__`),
 * or undefined. Iterative, so a deeply nested value cannot overflow the stack.
 */
export function findDroppedKey(value: unknown): string | undefined {
  const stack: Array<[unknown, string]> = [[value, '$']];
  while (stack.length > 0) {
    const [current, path] = stack.pop()!;
    if (typeof current !== 'object' || current === null) continue;
    if (Array.isArray(current)) {
      current.forEach((item, i) => stack.push([item, `${path}[${i}]`]));
      continue;
    }
    const key = DROPPED_KEYS.find((k) => Object.hasOwn(current, k));
    if (key !== undefined) return `${path}.${key}`;
    for (const [k, v] of Object.entries(current)) stack.push([v, `${path}.${k}`]);
  }
  return undefined;
}

/**
 * Names every plain object inherits (`valueOf`, `toString`, `hasOwnProperty`, …). class-validator's whitelist looks
 * a body's keys up in a plain object of the DTO's properties, so such a key counts as declared and passes as known.
 */
const INHERITED_NAMES: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));

/**
 * The global pipe: class-validator DTOs, unknown fields refused (`whitelist` + `forbidNonWhitelisted`), values
 * converted (`transform`). Nest's pipe deletes `__proto__`, `constructor` and `prototype` keys from the body in
 * place before validating; that would accept a body as if the key were not there, and alter signed content (an
 * account document) before it is verified. Here such a key is refused like any other unknown field.
 */
export class StrictValidationPipe extends ValidationPipe {
  constructor() {
    super({ whitelist: true, forbidNonWhitelisted: true, transform: true });
  }

  /** A DTO body with a key every object inherits (`{"valueOf": 1}`) is refused like any other unknown field. */
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'body' && this.toValidate(metadata) && typeof value === 'object' && value !== null) {
      const key = Array.isArray(value) ? undefined : Object.keys(value).find((k) => INHERITED_NAMES.has(k));
      if (key !== undefined) throw new BadRequestException(`property ${key} should not exist`);
    }
    return super.transform(value, metadata);
  }

  protected override stripProtoKeys(value: unknown): void {
    const path = findDroppedKey(value);
    if (path !== undefined) throw new BadRequestException(`property ${path} should not exist`);
  }
}
