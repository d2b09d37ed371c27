import { MatrixError } from './errors.js';

// Matrix bodies carry fields a strict DTO would refuse (clients send extras the spec says to ignore), so
// they are read as plain objects and checked here, field by field.

/** A JSON object (not an array, not null). */
export type JsonRecord = Record<string, unknown>;

/** Whether a value is a JSON object. */
export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The request body as an object; a missing body is `{}`. Throws M_BAD_JSON for anything else. */
export function bodyOf(value: unknown): JsonRecord {
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) throw new MatrixError('M_BAD_JSON', 'The body must be a JSON object.');
  return value;
}

/** A required string field. Throws M_MISSING_PARAM or M_BAD_JSON. */
export function requiredString(body: JsonRecord, field: string, maxLength = 1024): string {
  const value = body[field];
  if (value === undefined) throw new MatrixError('M_MISSING_PARAM', `${field} is required.`);
  return checkString(value, field, maxLength);
}

/** An optional string field. Throws M_BAD_JSON when present and not a string. */
export function optionalString(body: JsonRecord, field: string, maxLength = 1024): string | undefined {
  const value = body[field];
  return value === undefined || value === null ? undefined : checkString(value, field, maxLength);
}

/** An optional object field. Throws M_BAD_JSON when present and not an object. */
export function optionalRecord(body: JsonRecord, field: string): JsonRecord | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value)) throw new MatrixError('M_BAD_JSON', `${field} must be an object.`);
  return value;
}

/** An optional array of strings. Throws M_BAD_JSON otherwise. */
export function optionalStringArray(body: JsonRecord, field: string, max = 1000): string[] | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.length > max || !value.every((v) => typeof v === 'string')) {
    throw new MatrixError('M_BAD_JSON', `${field} must be an array of at most ${max} strings.`);
  }
  return value as string[];
}

/** A map of strings to strings. Throws M_BAD_JSON otherwise. */
export function stringMap(value: unknown, field: string): Record<string, string> {
  if (!isRecord(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw new MatrixError('M_BAD_JSON', `${field} must map strings to strings.`);
  }
  return value as Record<string, string>;
}

/** A Matrix signatures object: server name → key id → signature. Throws M_BAD_JSON otherwise. */
export function signatureMap(value: unknown, field: string): Record<string, Record<string, string>> {
  if (!isRecord(value)) throw new MatrixError('M_BAD_JSON', `${field} must be an object.`);
  for (const [server, keys] of Object.entries(value)) stringMap(keys, `${field}.${server}`);
  return value as Record<string, Record<string, string>>;
}

function checkString(value: unknown, field: string, maxLength: number): string {
  if (typeof value !== 'string') throw new MatrixError('M_BAD_JSON', `${field} must be a string.`);
  if (value.length > maxLength) throw new MatrixError('M_BAD_JSON', `${field} is longer than ${maxLength}.`);
  return value;
}
