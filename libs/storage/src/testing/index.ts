// Test helpers of @polyhome/storage: fresh databases per backend, and probes of what tables hold.
export * from './backends.js';
export * from './tables.js';
