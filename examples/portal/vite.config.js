import { defineConfig } from "vite";

// The npm package loads its .wasm with `new URL(..., import.meta.url)` and top-level await:
// an ES2022 build keeps both as they are, and vite copies the .wasm next to the bundle.
export default defineConfig({
  build: { target: "es2022", outDir: "dist", emptyOutDir: true },
  optimizeDeps: { exclude: ["medshare-wasm"] },
  server: { host: "127.0.0.1" },
  preview: { host: "127.0.0.1" },
});
