// Plain `pg` plumbing shared by the global setup (main process) and db.ts (test workers).
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { withClient } from '../../scripts/lib/database.ts';

export { databaseUrl, withClient } from '../../scripts/lib/database.ts';

export const ident = (name: string): string => pg.escapeIdentifier(name);

/**
 * Drops a database. Pools that were just closed can still be hanging up; terminating them with
 * FORCE then surfaces as an unhandled "terminating connection" error in the test process, so
 * give them a moment first and force only what is left.
 */
export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  await withClient(serverUrl, async (client) => {
    for (let attempt = 1; attempt <= 20; attempt++) {
      try {
        await client.query(`DROP DATABASE IF EXISTS ${ident(name)}`);
        return;
      } catch (error) {
        if ((error as { code?: string }).code !== '55006') throw error; // in use by other sessions
        await sleep(50);
      }
    }
    await client.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`);
  });
}
