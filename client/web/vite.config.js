import { defineConfig } from "vite";

// `npm run dev` proxies the API (HTTP and WebSocket) to a running gateway;
// STARHOLD_GATEWAY overrides its address.
const gateway = process.env.STARHOLD_GATEWAY || "http://127.0.0.1:8000";

export default defineConfig({
  base: "/",
  server: {
    proxy: {
      "/api": { target: gateway, ws: true, changeOrigin: true },
      "/healthz": { target: gateway },
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    // Babylon.js core (engine, scene, standard material, meshes, camera: ~1 MB minified,
    // ~260 kB gzip) is the floor of the entry chunk even with deep ESM imports; with the game's
    // own UI (chat, travel, the economy's dock: ~1.31 MB, ~326 kB gzip in all) warn only if the
    // bundle grows past that.
    chunkSizeWarningLimit: 1400,
  },
});
