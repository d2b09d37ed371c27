// The namespace harness refuses to run where it cannot build the network, saying why, instead of skipping.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { requireNetnsPrivileges } from './lab.js';

describe('the network-namespace harness', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('fails without root, saying what the tests need and how to run them', async () => {
    vi.spyOn(process, 'getuid').mockReturnValue(1000);
    await expect(requireNetnsPrivileges()).rejects.toThrow(/need root .*as \.ci\/run does.*not skipped/s);
  });
});
