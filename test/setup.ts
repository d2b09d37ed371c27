import '@polyhome/p2p/polyfill';
