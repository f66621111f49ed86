// Headless Chromium for the dashboard's browser tests and screenshots, driven by playwright-core
// (which downloads no browser). The first of these that exists is used:
//   1. CHROMIUM_PATH, when set (a set variable that names no file is an error, never skipped);
//   2. the devDependency @sparticuz/chromium (a brotli-compressed Chromium for Linux x64 that
//      `npm install` brings), decompressed once into node_modules/.cache;
//   3. /usr/bin/chromium (Debian's `chromium` package).
// Each launch gets a fresh profile.
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createBrotliDecompress } from 'node:zlib';
import { chromium, type BrowserContext } from 'playwright-core';

const NPM_PACKAGE = '@sparticuz/chromium';
const SYSTEM_CHROMIUM = '/usr/bin/chromium';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export type ChromiumLookup =
  | { found: true; path: string; from: string }
  | { found: false; reason: string };

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

const exists = (file: string) => fs.access(file).then(() => true, () => false);

let lookup: Promise<ChromiumLookup> | undefined;

/** Where the browser comes from, or why there is none. Looked up once per process. */
export function findChromium(): Promise<ChromiumLookup> {
  lookup ??= lookUp();
  return lookup;
}

async function lookUp(): Promise<ChromiumLookup> {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) {
    if (!(await exists(fromEnv))) throw new Error(`CHROMIUM_PATH=${fromEnv}: no such file; unset it or point it at a Chromium binary`);
    return { found: true, path: fromEnv, from: 'CHROMIUM_PATH' };
  }
  const npm = await npmChromium();
  if ('path' in npm) return { found: true, path: npm.path, from: NPM_PACKAGE };
  if (await exists(SYSTEM_CHROMIUM)) return { found: true, path: SYSTEM_CHROMIUM, from: SYSTEM_CHROMIUM };
  return {
    found: false,
    reason:
      `no Chromium: ${npm.missing}, there is no ${SYSTEM_CHROMIUM}, and CHROMIUM_PATH is unset. ` +
      `Run \`npm install\` (Linux x64), or \`apt-get install -y chromium\`, or set CHROMIUM_PATH`,
  };
}

/** The npm package's binary, decompressed on first use; or why it cannot be had here. */
async function npmChromium(): Promise<{ path: string } | { missing: string }> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return { missing: `${NPM_PACKAGE} has a Chromium for Linux x64 only (this is ${process.platform} ${process.arch})` };
  }
  let packageDir: string;
  try {
    packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.resolve(NPM_PACKAGE))), '..');
  } catch {
    return { missing: `${NPM_PACKAGE} is not installed` };
  }
  const { version } = JSON.parse(await fs.readFile(path.join(packageDir, 'package.json'), 'utf8')) as { version: string };
  const dir = path.join(packageDir, '..', '..', '.cache', 'pg-boss-joblog', `chromium-${version}`);
  const binary = path.join(dir, 'chromium');
  if (!(await exists(binary))) await decompress(path.join(packageDir, 'bin', 'chromium.br'), dir);
  return { path: binary };
}

// Into a scratch directory renamed into place, so a process running beside this one (another
// test run) either sees the whole binary or none.
async function decompress(archive: string, dir: string): Promise<void> {
  await fs.mkdir(path.dirname(dir), { recursive: true });
  const scratch = await fs.mkdtemp(`${dir}.partial-`);
  await fs.chmod(scratch, 0o755);
  try {
    await pipeline(createReadStream(archive), createBrotliDecompress(), createWriteStream(path.join(scratch, 'chromium'), { mode: 0o755 }));
    await fs.rename(scratch, dir).catch(async (error: NodeJS.ErrnoException) => {
      if (!(await exists(path.join(dir, 'chromium')))) throw error;
    });
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/** A browser with a fresh --user-data-dir, removed on close. */
export async function launchChromium(options: { javaScriptEnabled?: boolean; viewport?: { width: number; height: number } } = {}): Promise<Browser> {
  const found = await findChromium();
  if (!found.found) throw new Error(found.reason);
  const profile = await fs.mkdtemp(path.join(os.tmpdir(), 'joblog-chromium-'));
  // launchPersistentContext passes the profile as --user-data-dir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: found.path,
    headless: true,
    args: ARGS,
    javaScriptEnabled: options.javaScriptEnabled ?? true,
    viewport: options.viewport ?? { width: 1280, height: 900 },
  });
  return {
    context,
    async close() {
      await context.close();
      await fs.rm(profile, { recursive: true, force: true });
    },
  };
}
