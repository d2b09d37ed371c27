// The Hydrogen web client as its own app does it (hydrogen-web's src/platform/web/main.js), from the npm package:
// bundled with esbuild by test/hydrogen.test.ts and served from another origin than the server. The homeserver
// is the page's `?hs=` parameter; assets (worker, download sandbox, olm) sit beside the bundle.
/* global document, window */
import { createNavigation, createRouter, FeatureSet, Platform, RootViewModel } from 'hydrogen-view-sdk';
import 'hydrogen-view-sdk/theme-element-light.css';

async function main() {
  const homeserver = new URL(window.location.href).searchParams.get('hs');
  const platform = new Platform({
    container: document.getElementById('app'),
    assetPaths: {
      downloadSandbox: 'download-sandbox.html',
      // Hydrogen's client talks to its service worker at login (updateService): the app always ships one.
      serviceWorker: 'sw.js',
      worker: 'main.js',
      olm: { wasm: 'olm.wasm', legacyBundle: 'olm_legacy.js', wasmBundle: 'olm.js' },
    },
    config: { defaultHomeServer: homeserver },
    options: { development: false },
  });
  const navigation = createNavigation();
  platform.setNavigation(navigation);
  const urlRouter = createRouter({ navigation, history: platform.history });
  urlRouter.attach();
  const features = await FeatureSet.load(platform.settingsStorage);
  const vm = new RootViewModel({ platform, navigation, urlRouter, features });
  await vm.load();
  platform.createAndMountRootView(vm);
}

main().catch((err) => {
  document.body.setAttribute('data-start-error', `${err.message}\n${err.stack}`);
});
