import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";

// The window loads these files from the app bundle: no dev server, no remote content.
export default defineConfig({
  plugins: [svelte()],
  clearScreen: false,
  build: { target: "safari16", outDir: "dist", emptyOutDir: true, sourcemap: false },
  test: { include: ["src/**/*.test.ts"] },
});
