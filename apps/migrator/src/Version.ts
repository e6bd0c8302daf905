/** The version `--version` prints and the OTLP resource carries (`service.version`). */
export const version = "0.1.0"
