// matrix-bot-sdk requires this module at load but uses it only for end-to-end encryption. Every export throws
// when used, saying why, so a bot started without a crypto store runs and one with a store fails loudly.
/* global module */
'use strict';
const reason =
  '@matrix-org/matrix-sdk-crypto-nodejs is replaced by a stub in this repository (its install script downloads ' +
  'a native binary); run matrix-bot-sdk without a crypto store.';
module.exports = new Proxy(
  {},
  {
    get(_target, name) {
      if (name === '__esModule' || typeof name === 'symbol' || name === 'then') return undefined;
      throw new Error(`${String(name)}: ${reason}`);
    },
  },
);
