// A refused enrollment is logged on the server (issue 19, item 8): one warn line with the reason, over HTTP as
// a stranger would send it, on the built server process.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '@polyhome/p2p/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerProcess } from './support/server-process.js';

describe('refused enrollments in the server log', () => {
  let dir: string;
  let server: ServerProcess;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-enroll-log-'));
    server = await ServerProcess.create({ name: 'server', dataDir: dir, env: { LOG_LEVEL: 'info' } });
    await server.start();
  }, 180_000);
  afterAll(async () => {
    await server?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('logs one warn line naming the reason, the errcode and the way it came', async () => {
    const userId = '@mallory:ffd74e8ee7970d90abb63c66dbdacc2985c26139ae51474e57504e12919759b0';
    const answer = await server.request('POST', '/_polyhome/v1/enroll', {
      document: { user_id: userId },
      token: 'phe_not-a-token-of-this-server',
    });
    expect(answer.status).toBeGreaterThanOrEqual(400);
    expect(answer.status).toBeLessThan(500);
    const refused = () =>
      server.logs
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return undefined;
          }
        })
        .filter((l) => typeof l?.['msg'] === 'string' && (l['msg'] as string).startsWith('enrollment refused'));
    await waitFor(() => refused().length > 0, 'the refusal in the server log', 60_000);
    const lines = refused();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 40,
      msg: `enrollment refused: ${String(answer.body['error'])}`,
      errcode: answer.body.errcode,
      via: 'http',
      user_id: userId,
    });
  });
});
