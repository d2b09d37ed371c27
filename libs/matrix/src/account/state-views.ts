// Typed views of the JSON account state the port serves: every body in it passed its kind's validator
// (@polyhome/sync) before it was applied, so its shape is the kind's body type.
import type { AccountDataBody, PushRuleBody, RoomAccountDataBody } from '@polyhome/sync';
import type { MatrixAccountState } from '../port.js';

export function accountDataOf(state: MatrixAccountState): Record<string, AccountDataBody> {
  return state.accountData as unknown as Record<string, AccountDataBody>;
}

export function roomAccountDataOf(state: MatrixAccountState): Record<string, RoomAccountDataBody> {
  return state.roomAccountData as unknown as Record<string, RoomAccountDataBody>;
}

export function pushRulesOf(state: MatrixAccountState): Record<string, PushRuleBody> {
  return state.pushRules as unknown as Record<string, PushRuleBody>;
}

/** The content of an account-data body: the JSON text it holds (an object; checked when the op was applied). */
export function contentOf(body: { content_json: string }): Record<string, unknown> {
  return JSON.parse(body.content_json) as Record<string, unknown>;
}
