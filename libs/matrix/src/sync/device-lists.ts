/**
 * Users of other accounts whose device list or cross-signing keys changed, as the home marked them (`user_keys:<user
 * id>`, from an `m.device_list_update` of a home of theirs): the client queries their keys again.
 */
export function otherUsersChanged(changed: string[] | 'expired' | undefined): string[] {
  if (changed === undefined || changed === 'expired') return [];
  return [...new Set(changed.filter((k) => k.startsWith('user_keys:')).map((k) => k.slice('user_keys:'.length)))];
}
