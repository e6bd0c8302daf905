// Vitest config of the container check's own tests (tools/containers/test), run only by tools/containers/check.sh.
import { defineConfig } from "vitest/config"

export default defineConfig({
  resolve: { conditions: ["development"] },
  test: { include: ["test/**/*.test.ts"], testTimeout: 300_000, hookTimeout: 300_000 }
})
