// Customer IDs as the server reads them (src/domain/cid.rs): split on commas
// and white space, repeats collapsed (first occurrence wins, order kept),
// each value checked against the configured pattern.

// Rust's char::is_whitespace set, and the comma.
const SEPARATORS = /[,\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

export const DEFAULT_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$";

/** The pasted text split into values, empty ones dropped. */
export function splitCids(text) {
  return text.split(SEPARATORS).filter((value) => value.length > 0);
}

/** The configured pattern as a JavaScript RegExp, or null when it cannot be
 * read here (the server checks the CIDs anyway). */
export function compilePattern(source) {
  try {
    return new RegExp(source, "u");
  } catch {
    return null;
  }
}

const encoder = new TextEncoder();

/** Why the server would refuse one value, or null when it is valid. */
export function whyInvalid(value, pattern, isDefaultPattern) {
  if (value.length === 0) return "empty";
  if (/\s/u.test(value)) return "contains white space";
  if (isDefaultPattern && encoder.encode(value).length > 64) return "longer than 64 characters";
  if (pattern && !pattern.test(value)) return "does not match the customer ID pattern";
  return null;
}

/** Counts of the text: the distinct valid values in order, the invalid ones
 * with their reason, and how many repeats were dropped. */
export function analyseCids(text, pattern, isDefaultPattern) {
  const seen = new Set();
  const valid = [];
  const invalid = [];
  let repeated = 0;
  for (const value of splitCids(text)) {
    if (seen.has(value)) {
      repeated += 1;
      continue;
    }
    seen.add(value);
    const reason = whyInvalid(value, pattern, isDefaultPattern);
    if (reason === null) valid.push(value);
    else invalid.push({ value, reason });
  }
  return { valid, invalid, repeated };
}
