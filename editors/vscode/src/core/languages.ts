/**
 * The documents LLooM attaches to, from the `lloom.languages` setting.
 *
 * Pure: no `vscode` import.  Selectors are plain objects that satisfy `vscode.DocumentFilter`.
 */

export const DEFAULT_LANGUAGES: readonly string[] = ['plaintext', 'markdown'];

/** Schemes with a real text buffer; `git:` or `output:` views would only waste weaves. */
export const SCHEMES: readonly string[] = ['file', 'untitled'];

export interface LanguageFilter {
  language: string;
  scheme: string;
}

/** Distinct non-empty language ids, or the defaults when the value is unusable or empty. */
export function normalizeLanguages(value: unknown): string[] {
  if (!Array.isArray(value)) return [...DEFAULT_LANGUAGES];
  const ids = value
    .filter((v): v is string => typeof v === 'string')
    .map((v) => v.trim())
    .filter((v) => v !== '');
  const unique = [...new Set(ids)];
  return unique.length > 0 ? unique : [...DEFAULT_LANGUAGES];
}

export function documentSelector(languages: readonly string[]): LanguageFilter[] {
  return languages.flatMap((language) => SCHEMES.map((scheme) => ({ language, scheme })));
}

export function matchesSelector(
  doc: { languageId: string; uri: { scheme: string } },
  languages: readonly string[],
): boolean {
  return languages.includes(doc.languageId) && SCHEMES.includes(doc.uri.scheme);
}
