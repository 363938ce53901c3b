// The web app's bundle: the SDK is imported from its source (../clients/js/src) by the "@tickfan/client" alias, so
// the app always builds against the SDK in this checkout. `ws` is the SDK's Node-only transport (a dynamic import
// never reached in a browser): left out of the bundle.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

export default defineConfig({
  base: "./",
  resolve: {
    alias: { "@tickfan/client": fileURLToPath(new URL("../clients/js/src/index.ts", import.meta.url)) },
    // the SDK's source sits outside this package: resolve its dependency from web/node_modules
    dedupe: ["@bufbuild/protobuf"],
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // no inline scripts or data: modules (the page's CSP has no 'unsafe-inline'), no module-preload polyfill
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    rollupOptions: { external: ["ws"] },
  },
});
