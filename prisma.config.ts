import path from 'node:path';
import { defineConfig } from 'prisma/config';

// Prisma's CLI runs a native schema engine it downloads on first use. Where that download is
// impossible (no internet), the WebAssembly build of the same engine stands in for it; a user
// who has the native engine, or sets the variable, keeps theirs.
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= path.join(import.meta.dirname, 'scripts', 'schema-engine.mjs');

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  // Not `env('DATABASE_URL')`: that throws while the config loads, which breaks `prisma generate`
  // (it needs no database). Without DATABASE_URL, `migrate *` stops with "The datasource.url
  // property is required in your Prisma config file".
  datasource: { url: process.env.DATABASE_URL },
});
