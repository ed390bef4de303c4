import { defineConfig } from "vite";

// Preact's JSX runtime through esbuild (tsconfig `jsxImportSource`): no plugin needed.
// Relative `base` so the same build works from any path (a bucket prefix, a CDN folder).
export default defineConfig({
  base: "./",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 250,
  },
});
