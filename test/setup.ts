import '../apps/server/src/polyfill.js';
