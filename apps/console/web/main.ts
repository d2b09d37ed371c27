// The admin console: Preact components written with htm (tagged templates, no JSX step), styled by Pico CSS.
// Everything it shows comes from the admin REST API; it polls every 2 s while open ("live" without a socket).
import '@picocss/pico/css/pico.min.css';
import './console.css';
import { html } from 'htm/preact';
import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import {
  api,
  ApiError,
  saveToken,
  savedToken,
  type AccountDetail,
  type AccountSummary,
  type Job,
  type Page,
  type QueueCounts,
  type RoomDetail,
  type RoomSummary,
  type Stats,
} from './api.js';

/** How often the open views refresh. */
const POLL_MS = 2_000;
/** How often a running job's progress is read. */
const JOB_POLL_MS = 500;

/** Calls `load` now and every POLL_MS while mounted; returns the last answer and the last error. */
function usePolled<T>(
  load: () => Promise<T>,
  deps: unknown[],
): { data: T | undefined; error: string | undefined; reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    const run = (): void => {
      load().then(
        (d) => live && (setData(d), setError(undefined)),
        (e: unknown) => live && setError(e instanceof Error ? e.message : String(e)),
      );
    };
    run();
    const timer = setInterval(run, POLL_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [...deps, tick]);
  return { data, error, reload: useCallback(() => setTick((t) => t + 1), []) };
}

function short(id: string, keep = 12): string {
  return id.length > keep * 2 ? `${id.slice(0, keep)}…${id.slice(-6)}` : id;
}

function when(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : '—';
}

function SignIn({ onSignedIn }: { onSignedIn: () => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    try {
      await api('GET', '/admin/v1/node', undefined, token.trim());
      saveToken(token.trim());
      onSignedIn();
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? 'The server refused this token. Use its ADMIN_TOKEN, or the file DATA_DIR/admin-token it wrote.'
          : `Could not sign in: ${(err as Error).message}`,
      );
    }
  };
  return html`<article class="signin">
    <h1>polyhome admin</h1>
    <form onSubmit=${submit}>
      <label>
        Admin token
        <input
          id="token"
          type="password"
          autocomplete="off"
          value=${token}
          onInput=${(e: Event) => setToken((e.target as HTMLInputElement).value)}
          aria-invalid=${error === undefined ? undefined : 'true'}
          required
        />
        ${error === undefined ? null : html`<small role="alert">${error}</small>`}
      </label>
      <button type="submit">Sign in</button>
    </form>
  </article>`;
}

/** A chart of ops/s over the last hour: an SVG polyline over the sampled history. */
function OpsChart({ stats }: { stats: Stats }) {
  const points = stats.ops_per_second_history;
  if (points.length < 2)
    return html`<p><small>ops/s: the chart starts after the first samples (every 10 s).</small></p>`;
  const width = 600;
  const height = 80;
  const max = Math.max(1, ...points.map((p) => p.ops_per_second));
  const line = points
    .map(
      (p, i) =>
        `${((i / Math.max(1, points.length - 1)) * width).toFixed(1)},${(height - (p.ops_per_second / max) * height).toFixed(1)}`,
    )
    .join(' ');
  return html`<figure>
    <svg viewBox="0 0 ${width} ${height}" class="chart" role="img" aria-label="ops per second, last hour">
      <polyline points=${line} fill="none" stroke="currentColor" stroke-width="2" />
    </svg>
    <figcaption>ops/s over the last hour (peak ${Math.max(...points.map((p) => p.ops_per_second))})</figcaption>
  </figure>`;
}

function Overview() {
  const { data: stats, error } = usePolled(() => api<Stats>('GET', '/admin/v1/stats'), []);
  const { data: queues } = usePolled(() => api<Page<QueueCounts>>('GET', '/admin/v1/queues'), []);
  if (stats === undefined) return html`<p aria-busy="true">${error ?? 'Loading statistics…'}</p>`;
  const cards: Array<[string, number]> = [
    ['Accounts', stats.accounts],
    ['Devices', stats.devices],
    ['Rooms', stats.rooms],
    ['Events', stats.events],
    ['Ops', stats.ops],
    ['Ops/s', stats.ops_per_second],
  ];
  return html`<section>
    <div class="cards">
      ${cards.map(([label, value]) => html`<article class="card"><small>${label}</small><strong>${value}</strong></article>`)}
    </div>
    <${OpsChart} stats=${stats} />
    <div class="grid">
      <div>
        <h3>Delivery backlog</h3>
        ${
          stats.delivery_backlog.length === 0
            ? html`<p>No home is behind.</p>`
            : html`<table>
                <thead>
                  <tr>
                    <th>Home</th>
                    <th>Accounts</th>
                    <th>Pending ops</th>
                  </tr>
                </thead>
                <tbody>
                  ${stats.delivery_backlog.map(
                    (b) =>
                      html`<tr>
                        <td title=${b.peer_id}>${short(b.peer_id)}</td>
                        <td>${b.accounts}</td>
                        <td>${b.pending_ops}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
      </div>
      <div>
        <h3>Room delivery backlog</h3>
        ${
          stats.room_delivery_backlog.length === 0
            ? html`<p>No home is owed room events.</p>`
            : html`<table>
                <thead>
                  <tr>
                    <th>Home</th>
                    <th>Pending events</th>
                  </tr>
                </thead>
                <tbody>
                  ${stats.room_delivery_backlog.map(
                    (b) =>
                      html`<tr>
                        <td title=${b.peer_id}>${short(b.peer_id)}</td>
                        <td>${b.pending_events}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
      </div>
      <div>
        <h3>Queues</h3>
        <table>
          <thead>
            <tr>
              <th>Queue</th>
              <th>Waiting</th>
              <th>Active</th>
              <th>Delayed</th>
              <th>Failed</th>
            </tr>
          </thead>
          <tbody>
            ${(queues?.chunk ?? []).map(
              (q) =>
                html`<tr>
                  <td>${q.name}</td>
                  <td>${q.waiting}</td>
                  <td>${q.active}</td>
                  <td>${q.delayed}</td>
                  <td>${q.failed}</td>
                </tr>`,
            )}
          </tbody>
        </table>
      </div>
    </div>
  </section>`;
}

function CreateAccount({ onCreated }: { onCreated: (userId: string) => void }) {
  const [localpart, setLocalpart] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    try {
      const body = password === '' ? { localpart } : { localpart, password };
      const created = await api<AccountSummary>('POST', '/admin/v1/accounts', body);
      setLocalpart('');
      setPassword('');
      setError(undefined);
      onCreated(created.user_id);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return html`<form onSubmit=${submit} class="create">
    <fieldset role="group">
      <input
        id="new-localpart"
        placeholder="localpart"
        value=${localpart}
        onInput=${(e: Event) => setLocalpart((e.target as HTMLInputElement).value)}
        required
      />
      <input
        id="new-password"
        type="password"
        placeholder="password (optional)"
        autocomplete="new-password"
        value=${password}
        onInput=${(e: Event) => setPassword((e.target as HTMLInputElement).value)}
      />
      <button type="submit">Create account</button>
    </fieldset>
    ${error === undefined ? null : html`<small role="alert">${error}</small>`}
  </form>`;
}

/** A confirmation dialog that asks for the reason the audit log keeps. */
function Confirm({
  title,
  action,
  onConfirm,
  onClose,
  children,
}: {
  title: string;
  action: string;
  onConfirm: (reason: string) => Promise<void>;
  onClose: () => void;
  /** Further fields of the dialog (shown under the reason). */
  children?: unknown;
}) {
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  return html`<dialog open>
    <article>
      <header><strong>${title}</strong></header>
      <label>
        Reason (kept in the audit log)
        <textarea
          id="reason"
          value=${reason}
          onInput=${(e: Event) => setReason((e.target as HTMLTextAreaElement).value)}
        ></textarea>
      </label>
      ${children} ${error === undefined ? null : html`<small role="alert">${error}</small>`}
      <footer>
        <button class="secondary" onClick=${onClose}>Cancel</button>
        <button
          disabled=${reason.trim() === ''}
          onClick=${() => onConfirm(reason).then(onClose, (err: unknown) => setError((err as Error).message))}
        >
          ${action}
        </button>
      </footer>
    </article>
  </dialog>`;
}

/** Whether a job has ended (its record no longer changes). */
function ended(job: Job): boolean {
  return job.state === 'done' || job.state === 'failed';
}

/** A job's progress in words: phase, then the counts. */
function progressLine(job: Job | undefined): string {
  const p = job?.progress ?? {};
  return (
    `${p.phase ?? 'queued'}: ${p.ops_received ?? 0} ops received, ${p.ops_sent ?? 0} sent, ` +
    `${p.missing_here ?? 0} missing here, ${p.missing_there ?? 0} missing there`
  );
}

/** One resync job, read every JOB_POLL_MS until it has ended, then left as it ended. */
function ResyncJob({ jobId, home }: { jobId: string; home: string }) {
  const [job, setJob] = useState<Job | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = (): void => {
      api<Job>('GET', `/admin/v1/jobs/${encodeURIComponent(jobId)}`).then(
        (j) => {
          if (!live) return;
          setJob(j);
          setError(undefined);
          if (!ended(j)) timer = setTimeout(run, JOB_POLL_MS);
        },
        (e: unknown) => {
          if (!live) return;
          setError(e instanceof Error ? e.message : String(e));
          timer = setTimeout(run, POLL_MS);
        },
      );
    };
    run();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [jobId]);
  return html`<article class="job" data-job=${jobId}>
    <header>
      Resync with <strong>${home}</strong>
      <span class=${`status job-${job?.state ?? 'queued'}`}>${job?.state ?? 'starting'}</span>
    </header>
    ${job === undefined || ended(job) ? null : html`<progress></progress>`}
    <p class="progress">${progressLine(job)}</p>
    ${job?.error ? html`<p role="alert" class="job-error">${job.error}</p>` : null}
    ${error === undefined ? null : html`<small role="alert">${error}</small>`}
    <small>${jobId}${job?.finished_at ? ` · ended ${when(job.finished_at)}` : ''}</small>
  </article>`;
}

function AccountPanel({ userId, onChanged }: { userId: string; onChanged: () => void }) {
  const route = `/admin/v1/accounts/${encodeURIComponent(userId)}`;
  const { data: a, error, reload } = usePolled(() => api<AccountDetail>('GET', route), [userId]);
  const [confirm, setConfirm] = useState<'deactivate' | 'reactivate' | undefined>(undefined);
  /** The home a resync is being confirmed for. */
  const [resyncWith, setResyncWith] = useState<{ peerId: string; name: string } | undefined>(undefined);
  /** The resync jobs started from this panel, newest first. */
  const [jobs, setJobs] = useState<Array<{ jobId: string; home: string }>>([]);
  useEffect(() => setJobs([]), [userId]);
  if (a === undefined) return html`<article aria-busy="true">${error ?? 'Loading…'}</article>`;
  return html`<article class="account">
    <header>
      <strong title=${a.user_id}>${short(a.user_id, 20)}</strong>
      <span class=${`status ${a.status}`}>${a.status}</span>
      <small> · ${a.custody} custody · last login ${when(a.last_activity.last_login_at)}</small>
    </header>
    <h4>Homes</h4>
    <table>
      <thead>
        <tr>
          <th>Name</th>
          <th>Role</th>
          <th>Sync</th>
          <th>Pending ops</th>
          <th>Last seen</th>
          <th>Repair</th>
        </tr>
      </thead>
      <tbody>
        ${a.homes.map(
          (h) =>
            html`<tr class="home">
              <td title=${h.peer_id}>${h.name}${h.self ? ' (this server)' : ''}</td>
              <td>${h.role}</td>
              <td>${h.self ? 'self' : h.connected ? 'connected' : 'offline'}</td>
              <td>${h.pending_ops}</td>
              <td>${when(h.last_seen_at)}</td>
              <td>
                ${
                  h.self || a.status === 'taken_down'
                    ? '—'
                    : html`<button
                        class="outline resync"
                        title=${`Resync ${a.user_id} with ${h.peer_id}`}
                        onClick=${() => setResyncWith({ peerId: h.peer_id, name: h.name })}
                      >
                        Resync with this home
                      </button>`
                }
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${jobs.map((j) => html`<${ResyncJob} key=${j.jobId} jobId=${j.jobId} home=${j.home} />`)}
    <h4>Devices (${a.devices.length})</h4>
    <table class="devices">
      <thead>
        <tr>
          <th>Device</th>
          <th>Name</th>
          <th>Home</th>
        </tr>
      </thead>
      <tbody>
        ${a.devices.map(
          (d) =>
            html`<tr>
              <td>${d.device_id}</td>
              <td>${d.display_name ?? '—'}</td>
              <td title=${d.home ?? ''}>${short(d.home ?? '—')}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    <h4>Rooms (${a.rooms.length})</h4>
    <table>
      <thead>
        <tr>
          <th>Room</th>
          <th>Membership</th>
        </tr>
      </thead>
      <tbody>
        ${a.rooms.map(
          (r) =>
            html`<tr>
              <td title=${r.room_id}>${short(r.room_id, 16)}</td>
              <td>${r.membership}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    <footer>
      ${
        a.status === 'active'
          ? html`<button class="contrast" onClick=${() => setConfirm('deactivate')}>Deactivate…</button>`
          : html`<button onClick=${() => setConfirm('reactivate')}>Reactivate…</button>`
      }
    </footer>
    ${
      confirm === undefined
        ? null
        : html`<${Confirm}
            title=${`${confirm === 'deactivate' ? 'Deactivate' : 'Reactivate'} ${a.user_id}?`}
            action=${confirm === 'deactivate' ? 'Confirm deactivation' : 'Confirm reactivation'}
            onConfirm=${async (reason: string) => {
              await api('POST', `${route}/${confirm}`, { reason });
              reload();
              onChanged();
            }}
            onClose=${() => setConfirm(undefined)}
          />`
    }
    ${
      resyncWith === undefined
        ? null
        : html`<${Confirm}
            title=${`Resync ${a.user_id} with ${resyncWith.name}?`}
            action="Start resync"
            onConfirm=${async (reason: string) => {
              const job = await api<Job>('POST', `${route}/resync`, { home: resyncWith.peerId, reason });
              setJobs((all) => [{ jobId: job.job_id, home: resyncWith.name }, ...all]);
            }}
            onClose=${() => setResyncWith(undefined)}
          >
            <p>
              <small
                >This server closes its session with the home and runs a fresh one: both ends compare everything they
                hold and send what the other lacks.</small
              >
            </p>
          <//>`
    }
  </article>`;
}

function Accounts() {
  const [search, setSearch] = useState('');
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const query = search === '' ? '' : `&search=${encodeURIComponent(search)}`;
  const { data, reload } = usePolled(
    () => api<Page<AccountSummary>>('GET', `/admin/v1/accounts?limit=100${query}`),
    [query],
  );
  return html`<section>
    <h2>Accounts</h2>
    <${CreateAccount}
      onCreated=${(id: string) => {
        setSelected(id);
        reload();
      }}
    />
    <input
      type="search"
      id="account-search"
      placeholder="Search user IDs"
      value=${search}
      onInput=${(e: Event) => setSearch((e.target as HTMLInputElement).value)}
    />
    <div class="grid accounts">
      <table>
        <thead>
          <tr>
            <th>User</th>
            <th>Status</th>
          </tr>
        </thead>
        <tbody>
          ${(data?.chunk ?? []).map(
            (a) =>
              html`<tr class=${a.user_id === selected ? 'selected' : ''} onClick=${() => setSelected(a.user_id)}>
                <td>
                  <a href="#" onClick=${(e: Event) => e.preventDefault()} title=${a.user_id}>${short(a.user_id, 10)}</a>
                </td>
                <td>${a.status}</td>
              </tr>`,
          )}
        </tbody>
      </table>
      ${selected === undefined ? html`<p>Select an account.</p>` : html`<${AccountPanel} userId=${selected} onChanged=${reload} />`}
    </div>
  </section>`;
}

interface AuditRow {
  id: string;
  action: string;
  target: string;
  reason: string;
  created_at: string;
}

/** A short line for a state event's content (the detail view's state summary). */
function stateSummary(e: RoomDetail['state'][number]): string {
  const c = (e.content ?? {}) as Record<string, unknown>;
  switch (e.type) {
    case 'm.room.name':
      return String(c['name'] ?? '');
    case 'm.room.topic':
      return String(c['topic'] ?? '');
    case 'm.room.member':
      return String(c['membership'] ?? '');
    case 'm.room.join_rules':
      return String(c['join_rule'] ?? '');
    case 'm.room.history_visibility':
      return String(c['history_visibility'] ?? '');
    case 'm.room.encryption':
      return String(c['algorithm'] ?? '');
    case 'm.room.power_levels': {
      const users = Object.keys((c['users'] ?? {}) as object).length;
      return `${users} user${users === 1 ? '' : 's'} with their own level`;
    }
    case 'm.room.create':
      return `version ${String(c['room_version'] ?? '1')}`;
    default: {
      const text = JSON.stringify(c);
      return text.length > 80 ? `${text.slice(0, 79)}…` : text;
    }
  }
}

function RoomPanel({ roomId, onChanged }: { roomId: string; onChanged: () => void }) {
  const route = `/admin/v1/rooms/${encodeURIComponent(roomId)}`;
  const { data: r, error, reload } = usePolled(() => api<RoomDetail>('GET', route), [roomId]);
  const [confirm, setConfirm] = useState<'delete' | 'block' | 'unblock' | undefined>(undefined);
  const [alsoBlock, setAlsoBlock] = useState(false);
  const [outcome, setOutcome] = useState<string | undefined>(undefined);
  useEffect(() => setOutcome(undefined), [roomId]);
  if (r === undefined) return html`<article class="room" aria-busy="true">${error ?? 'Loading…'}</article>`;
  const done = (): void => {
    reload();
    onChanged();
  };
  return html`<article class="room">
    <header>
      <strong title=${r.room_id}>${r.name ?? short(r.room_id, 20)}</strong>
      ${r.block === null ? null : html`<span class="status blocked" title=${r.block.reason}>blocked</span>`}
      <small>
        · ${short(r.room_id, 16)} · version ${r.room_version} · ${r.events} events · created
        ${when(r.created_at)}</small
      >
    </header>
    ${
      r.block === null
        ? null
        : html`<p class="block-note">
            Blocked ${when(r.block.blocked_at)}: <em>${r.block.reason}</em>. No user of this server can join it or be
            invited into it.
          </p>`
    }
    ${outcome === undefined ? null : html`<p class="outcome" role="status">${outcome}</p>`}
    <h4>Members (${r.members.length}${r.members_truncated ? '+' : ''})</h4>
    <table class="members">
      <thead>
        <tr>
          <th>User</th>
          <th>Membership</th>
        </tr>
      </thead>
      <tbody>
        ${r.members.map(
          (m) =>
            html`<tr>
              <td title=${m.user_id}>${short(m.user_id, 16)}</td>
              <td>${m.membership}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    <h4>Servers and homes (${r.servers.length})</h4>
    <table class="servers">
      <thead>
        <tr>
          <th>Server</th>
          <th>Members</th>
          <th>Hosted here</th>
          <th>Homes</th>
        </tr>
      </thead>
      <tbody>
        ${r.servers.map(
          (sv) =>
            html`<tr>
              <td title=${sv.server_name}>${short(sv.server_name, 10)}</td>
              <td>${sv.members}</td>
              <td>${sv.hosted_here ? 'yes' : 'no'}</td>
              <td>
                ${sv.homes.length === 0 ? '—' : sv.homes.map((h) => html`<span title=${h.peer_id}>${h.name} (${h.role}) </span>`)}
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
    <h4>State (${r.state.length}${r.state_truncated ? '+' : ''} events)</h4>
    <table class="state">
      <thead>
        <tr>
          <th>Type</th>
          <th>State key</th>
          <th>Content</th>
          <th>Sender</th>
        </tr>
      </thead>
      <tbody>
        ${r.state.map(
          (e) =>
            html`<tr>
              <td>${e.type}</td>
              <td title=${e.state_key}>${short(e.state_key, 12)}</td>
              <td>${stateSummary(e)}</td>
              <td title=${e.sender}>${short(e.sender, 10)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    <footer>
      <button class="contrast" onClick=${() => (setAlsoBlock(false), setConfirm('delete'))}>Delete room…</button>
      ${
        r.block === null
          ? html`<button class="secondary" onClick=${() => setConfirm('block')}>Block…</button>`
          : html`<button class="secondary" onClick=${() => setConfirm('unblock')}>Unblock…</button>`
      }
    </footer>
    ${
      confirm !== 'delete'
        ? null
        : html`<${Confirm}
            title=${`Delete ${r.name ?? r.room_id}?`}
            action="Confirm deletion"
            onConfirm=${async (reason: string) => {
              const answer = await api<{ left: string[]; forgotten: string[]; failed: unknown[]; blocked: boolean }>(
                'DELETE',
                route,
                alsoBlock ? { reason, block: true } : { reason },
              );
              setOutcome(
                `Deleted: ${answer.left.length} left, ${answer.forgotten.length} forgot it, ${answer.failed.length} failed` +
                  (answer.blocked ? '; blocked.' : '.'),
              );
              done();
            }}
            onClose=${() => setConfirm(undefined)}
          >
            <p>
              <small
                >Every user of an account hosted here leaves the room and forgets it. Users of other servers and the
                room’s events stay.</small
              >
            </p>
            <label>
              <input
                id="also-block"
                type="checkbox"
                role="switch"
                checked=${alsoBlock}
                onChange=${(e: Event) => setAlsoBlock((e.target as HTMLInputElement).checked)}
              />
              Also block it (no user of this server may join it again)
            </label>
          <//>`
    }
    ${
      confirm !== 'block' && confirm !== 'unblock'
        ? null
        : html`<${Confirm}
            title=${`${confirm === 'block' ? 'Block' : 'Unblock'} ${r.name ?? r.room_id}?`}
            action=${confirm === 'block' ? 'Confirm block' : 'Confirm unblock'}
            onConfirm=${async (reason: string) => {
              await api('PUT', `${route}/block`, { block: confirm === 'block', reason });
              done();
            }}
            onClose=${() => setConfirm(undefined)}
          />`
    }
  </article>`;
}

function Rooms() {
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const { data, reload } = usePolled(() => api<Page<RoomSummary>>('GET', '/admin/v1/rooms?limit=50'), []);
  return html`<section>
    <h2>Rooms</h2>
    ${
      (data?.chunk.length ?? 0) === 0
        ? html`<p>No rooms on this server.</p>`
        : html`<div class="grid rooms-view">
            <table class="rooms">
              <thead>
                <tr>
                  <th>Room</th>
                  <th>Name</th>
                  <th>Joined</th>
                  <th>Events</th>
                </tr>
              </thead>
              <tbody>
                ${data!.chunk.map(
                  (r) =>
                    html`<tr class=${r.room_id === selected ? 'selected' : ''} onClick=${() => setSelected(r.room_id)}>
                      <td title=${r.room_id}>
                        <a href="#" onClick=${(e: Event) => e.preventDefault()}>${short(r.room_id, 12)}</a>
                      </td>
                      <td>${r.name ?? '—'}${r.blocked ? html` <span class="status blocked">blocked</span>` : null}</td>
                      <td>${r.joined_members}</td>
                      <td>${r.events}</td>
                    </tr>`,
                )}
              </tbody>
            </table>
            ${
              selected === undefined
                ? html`<p>Select a room.</p>`
                : html`<${RoomPanel} roomId=${selected} onChanged=${reload} />`
            }
          </div>`
    }
  </section>`;
}

function Audit() {
  const { data } = usePolled(() => api<Page<AuditRow>>('GET', '/admin/v1/audit?limit=20'), []);
  return html`<section>
    <h2>Audit log</h2>
    ${
      (data?.chunk.length ?? 0) === 0
        ? html`<p>Nothing done yet.</p>`
        : html`<table class="audit">
            <thead>
              <tr>
                <th>When</th>
                <th>Action</th>
                <th>Target</th>
                <th>Reason</th>
              </tr>
            </thead>
            <tbody>
              ${data!.chunk.map(
                (e) =>
                  html`<tr>
                    <td>${when(e.created_at)}</td>
                    <td>${e.action}</td>
                    <td title=${e.target}>${short(e.target, 16)}</td>
                    <td>${e.reason}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
  </section>`;
}

function App() {
  const [signedIn, setSignedIn] = useState(savedToken() !== null);
  if (!signedIn) return html`<${SignIn} onSignedIn=${() => setSignedIn(true)} />`;
  return html`<nav>
      <ul>
        <li><strong>polyhome admin</strong></li>
      </ul>
      <ul>
        <li>
          <button
            class="secondary outline"
            onClick=${() => {
              saveToken(null);
              setSignedIn(false);
            }}
          >
            Sign out
          </button>
        </li>
      </ul>
    </nav>
    <${Overview} />
    <${Accounts} />
    <${Rooms} />
    <${Audit} />`;
}

render(html`<${App} />`, document.getElementById('app')!);
