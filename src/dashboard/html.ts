// One way to write markup: the `html` tagged template. Every interpolated value is escaped
// unless it is itself the result of `html` (or `unsafeRaw` for a few constant strings), so a
// `<script>` in an error message, a user id or a group always renders as text.

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Markup that is already safe: the output of `html`. */
export class Html {
  readonly #value: string;

  /** @internal use `html` */
  constructor(value: string) {
    this.#value = value;
  }

  toString(): string {
    return this.#value;
  }
}

/** Escape text for use in element content and in quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

/**
 * Interpolated values: `Html` as is; arrays each in turn; null, undefined and false as nothing;
 * anything else as escaped text.
 */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) {
    out += render(values[i]) + strings[i + 1]!;
  }
  return new Html(out);
}

function render(value: unknown): string {
  if (value instanceof Html) return value.toString();
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(String(value));
}

/** A constant written in this package (CSS, a doctype): never pass data through it. */
export function unsafeRaw(constant: string): Html {
  return new Html(constant);
}
