// The admin REST API from the browser: the token lives in sessionStorage (gone when the tab closes).

const TOKEN_KEY = 'polyhome-admin-token';

/** An error the API answered, with its errcode. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errcode: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function savedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/** Calls an admin route with the token; resolves with the JSON answer or rejects with ApiError. */
export async function api<T>(method: string, route: string, body?: unknown, token = savedToken()): Promise<T> {
  const res = await fetch(route, {
    method,
    headers: {
      Authorization: `Bearer ${token ?? ''}`,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const answer = (await res.json().catch(() => ({}))) as { errcode?: string; error?: string };
  if (!res.ok) throw new ApiError(res.status, answer.errcode ?? `HTTP ${res.status}`, answer.error ?? res.statusText);
  return answer as T;
}

/** A page of a list route. */
export interface Page<T> {
  chunk: T[];
  next_from?: string;
}

export interface AccountSummary {
  user_id: string;
  server_name: string;
  custody: string;
  status: string;
  created_at: string;
}

export interface HomeStatus {
  name: string;
  role: string;
  peer_id: string;
  self: boolean;
  connected: boolean;
  pending_ops: number;
  last_seen_at: string | null;
}

export interface AccountDetail extends AccountSummary {
  homes: HomeStatus[];
  devices: Array<{ device_id: string; display_name?: string; home?: string }>;
  rooms: Array<{ room_id: string; membership: string }>;
  last_activity: { last_op_at: string | null; last_login_at: string | null; access_tokens: number };
}

export interface Stats {
  accounts: number;
  devices: number;
  rooms: number;
  events: number;
  ops: number;
  ops_per_second: number;
  ops_per_second_history: Array<{ at: string; ops_per_second: number }>;
  delivery_backlog: Array<{ peer_id: string; accounts: number; pending_ops: number }>;
  room_delivery_backlog: Array<{ peer_id: string; pending_events: number }>;
}

export interface QueueCounts {
  name: string;
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
}

export interface RoomSummary {
  room_id: string;
  room_version: string;
  name: string | null;
  joined_members: number;
  events: number;
  created_at: string;
  /** Local users may not join it or be invited into it (PUT /admin/v1/rooms/{roomId}/block). */
  blocked: boolean;
}

export interface RoomDetail extends RoomSummary {
  members: Array<{ user_id: string; membership: string }>;
  servers: Array<{
    server_name: string;
    members: number;
    hosted_here: boolean;
    homes: Array<{ peer_id: string; role: string; name: string }>;
  }>;
  state: Array<{ type: string; state_key: string; event_id: string; sender: string; content: unknown }>;
  state_truncated: boolean;
  members_truncated: boolean;
  block: { reason: string; blocked_at: string } | null;
}

/** A job of the admin API (a forced resync), as GET /admin/v1/jobs/{id} answers it. */
export interface Job {
  job_id: string;
  kind: string;
  target: string;
  state: string;
  params: Record<string, unknown>;
  progress: {
    phase?: string;
    ops_received?: number;
    ops_sent?: number;
    missing_here?: number;
    missing_there?: number;
  };
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}
