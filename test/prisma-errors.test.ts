// isSectionBusyError against the errors Prisma 5, 6 and 7 really throw (recorded in
// test/fixtures/prisma-errors by record.mjs there; each file says how it was made).
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { isSectionBusyError } from '../src/index.ts';

const dir = new URL('./fixtures/prisma-errors/', import.meta.url);
const fixtures = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
const load = (file: string): { source: string; error: { code: string; message: string; meta: Record<string, any> } } =>
  JSON.parse(readFileSync(new URL(file, dir), 'utf8'));
/** A recorded error as the app meets it: an Error carrying Prisma's code and meta. */
const asThrown = ({ error }: ReturnType<typeof load>) => Object.assign(new Error(error.message), { code: error.code, meta: error.meta });

describe('isSectionBusyError on recorded Prisma errors', () => {
  test('every major has its four recordings: section and jid, ORM and raw', () => {
    const expected = [5, 6, 7].flatMap((major) =>
      ['jid-orm', 'jid-raw', 'section-orm', 'section-raw'].map((kind) => `prisma-${major}-${kind}.json`));
    expect(fixtures).toEqual(expected.sort());
    for (const file of fixtures) expect(load(file).source).toMatch(/^recorded by .* with @prisma\/client \d/);
  });

  test.each(fixtures.filter((f) => f.includes('-section-')))('%s is a busy section, thrown or as a cause', (file) => {
    const error = asThrown(load(file));
    expect(isSectionBusyError(error)).toBe(true);
    expect(isSectionBusyError(new Error('claim failed', { cause: error }))).toBe(true);
  });

  test.each(fixtures.filter((f) => f.includes('-jid-')))('%s (the jid unique key) is not a busy section', (file) => {
    expect(isSectionBusyError(asThrown(load(file)))).toBe(false);
  });
});

describe('isSectionBusyError on shapes derived from the recordings', () => {
  const p5raw = load('prisma-5-section-raw.json').error;
  const p5orm = load('prisma-5-section-orm.json').error;
  const p6orm = load('prisma-6-section-orm.json').error;
  const p7orm = load('prisma-7-section-orm.json').error;
  const withMeta = (base: typeof p5raw, meta: Record<string, any>, code = base.code) => Object.assign(new Error(base.message), { code, meta });
  const cause6 = p6orm.meta.driverAdapterError.cause;
  const cause7 = p7orm.meta.driverAdapterError.cause;

  test('Prisma 5 raw: the key columns decide, whatever the values say', () => {
    // pg quotes no values: a user id may contain ")=(", quotes and the index's name.
    const hostile = 'Key (user_id, "group")=(a)=(b, "job_logs_section_key", g\u{1F600}) already exists.';
    expect(isSectionBusyError(withMeta(p5raw, { code: '23505', message: hostile }))).toBe(true);
    expect(isSectionBusyError(withMeta(p5raw, { code: '23505', message: 'Key (email)=("job_logs_section_key") already exists.' }))).toBe(false);
    expect(isSectionBusyError(withMeta(p5raw, { code: '23505', message: 'Key (user_id)=(u) already exists.' }))).toBe(false);
    expect(isSectionBusyError(withMeta(p5raw, { code: '23503', message: p5raw.meta.message }))).toBe(false);
    expect(isSectionBusyError(withMeta(p5raw, { code: '23505', message: `${'x'.repeat(4096)}\u0000` }))).toBe(false);
  });

  test('Prisma 5 ORM: the target is the section columns, exactly', () => {
    expect(isSectionBusyError(withMeta(p5orm, { modelName: 'User', target: ['email'] }))).toBe(false);
    expect(isSectionBusyError(withMeta(p5orm, { modelName: 'JobLog', target: ['user_id'] }))).toBe(false);
    expect(isSectionBusyError(withMeta(p5orm, { modelName: 'JobLog', target: ['user_id', 'group', 'queue'] }))).toBe(false);
    expect(isSectionBusyError(withMeta(p5orm, { modelName: 'JobLog', target: 'job_logs_section_key' }))).toBe(true);
    expect(isSectionBusyError(withMeta(p5orm, p5orm.meta, 'P2025'))).toBe(false);
  });

  test('driver adapter (6 and 7): 23505 on the section index or columns; nothing else', () => {
    const adapter = (cause: Record<string, any>) => withMeta(p6orm, { driverAdapterError: { name: 'DriverAdapterError', cause } });
    expect(isSectionBusyError(adapter({ ...cause6, constraint: { fields: ['email'] } }))).toBe(false);
    expect(isSectionBusyError(adapter({ ...cause6, originalCode: '23503' }))).toBe(false);
    expect(isSectionBusyError(adapter({ ...cause7, constraint: { index: 'job_logs_jid_key' } }))).toBe(false);
    expect(isSectionBusyError(adapter({ ...cause7, constraint: undefined }))).toBe(false);
  });

  test('an unknown shape: only a message that quotes the index name says busy', () => {
    const bare = (message: string) => Object.assign(new Error(message), { code: 'P2002' });
    expect(isSectionBusyError(bare('Unique constraint failed on the constraint: `job_logs_section_key`'))).toBe(true);
    expect(isSectionBusyError(bare('duplicate key value violates unique constraint "job_logs_section_key"'))).toBe(true);
    expect(isSectionBusyError(bare('Unique constraint failed on the constraint: `job_logs_section_key_old`'))).toBe(false);
    expect(isSectionBusyError(bare('value job_logs_section_key already taken'))).toBe(false);
  });
});
