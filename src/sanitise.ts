// What the log stores of an error must always be storable and bounded: PostgreSQL's jsonb refuses
// a NUL (\u0000) and a lone surrogate (half of an emoji, e.g. a string cut mid-character) with
// 22P05, and an unbounded message is read back by every list and page that shows the row.

/** The longest message kept, in UTF-16 code units; a longer one is cut and says how much is gone. */
export const MESSAGE_CHARS = 2000;
/** The most stack frames kept, and the most characters of them. */
export const STACK_LINES = 12;
export const STACK_CHARS = 4000;
/** A name or code longer than this is not a name: cut it. */
export const NAME_CHARS = 200;

/**
 * `text` as the database can store it: each NUL and each lone surrogate becomes U+FFFD (the
 * replacement character), and text longer than `max` is cut (never inside a surrogate pair) with
 * `… [N more characters]` appended.
 */
export function storableText(text: string, max: number): string {
  let kept = text;
  let cut = '';
  if (text.length > max) {
    // Do not end on the first half of a pair: that half would become U+FFFD.
    const end = isHighSurrogate(text.charCodeAt(max - 1)) ? max - 1 : max;
    kept = text.slice(0, end);
    cut = `… [${text.length - end} more characters]`;
  }
  return kept.replace(UNSTORABLE, '\ufffd') + cut;
}

/** A NUL, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one. */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;
