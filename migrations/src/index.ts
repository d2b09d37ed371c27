import type { MigrationInterface } from 'typeorm';
import { Initial1795515229364 } from './1795515229364-Initial.js';

/** Every migration, oldest first. Classes, not file globs, so the list is the same in every runtime. */
export const MIGRATIONS: Array<new () => MigrationInterface> = [Initial1795515229364];
