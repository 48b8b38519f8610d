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

const WHITE_SPACE = /\s/u;
const ASCII = /^[\x00-\x7f]*$/;

/** The length of a value in UTF-8 bytes; no encoding for ASCII. */
function utf8Length(value) {
  return ASCII.test(value) ? value.length : encoder.encode(value).length;
}

/** Why the server would refuse one value, or null when it is valid. */
export function whyInvalid(value, pattern, isDefaultPattern) {
  if (value.length === 0) return "empty";
  if (WHITE_SPACE.test(value)) return "contains white space";
  if (isDefaultPattern && value.length > 21 && utf8Length(value) > 64) return "longer than 64 characters";
  if (pattern && !pattern.test(value)) {
    return isDefaultPattern
      ? "not a customer ID: use letters, digits, _ . or -, starting with a letter or digit"
      : `does not match the customer ID pattern ${pattern.source}`;
  }
  return null;
}

/** Where the line starting at `from` ends (its line break, or the end). */
function lineEnd(text, from) {
  const n = text.indexOf("\n", from);
  const r = text.indexOf("\r", from);
  const end = n < 0 ? r : r < 0 ? n : Math.min(n, r);
  return end < 0 ? text.length : end;
}

/** Where the line after the one ending at `end` starts. */
function nextLine(text, end) {
  return end + (text[end] === "\r" && text[end + 1] === "\n" ? 2 : 1);
}

/**
 * The values of pasted text (or of a text file) as the page reads them
 * (SPEC §16): a first line that is a column header (`Customer ID`, …) is
 * left out; a line holding a tab is a spreadsheet row, and only its first
 * cell is a value; every other line splits on commas and white space.
 * Answers `{values, header, rows}`: the header left out (trimmed) or null,
 * and how many lines had extra cells that were ignored.
 */
export function pastedValues(text) {
  let start = 0;
  let end = lineEnd(text, 0);
  while (end < text.length && text.slice(start, end).trim() === "") {
    start = nextLine(text, end);
    end = lineEnd(text, start);
  }
  const first = text.slice(start, end);
  const tab = first.indexOf("\t");
  const firstCell = tab < 0 ? first : first.slice(0, tab);
  let header = null;
  let body = text;
  if (isHeader(firstCell)) {
    header = firstCell.trim();
    body = text.slice(end);
  }
  if (!body.includes("\t")) return { values: splitCids(body), header, rows: 0 };
  const values = [];
  let rows = 0;
  for (let at = 0; at < body.length; ) {
    const stop = lineEnd(body, at);
    const line = body.slice(at, stop);
    const cut = line.indexOf("\t");
    if (cut < 0) {
      for (const value of splitCids(line)) values.push(value);
    } else {
      rows += 1;
      const cell = line.slice(0, cut).trim();
      if (cell.length > 0) values.push(cell);
    }
    at = nextLine(body, stop);
  }
  return { values, header, rows };
}

/** Counts of the text read as a paste: the distinct valid values in order,
 * the invalid ones with their reason, how many repeats were dropped, the
 * header line left out (or null) and how many rows had extra cells. */
export function analyseCids(text, pattern, isDefaultPattern) {
  const seen = new Set();
  const valid = [];
  const invalid = [];
  let repeated = 0;
  const read = pastedValues(text);
  for (const value of read.values) {
    if (seen.has(value)) {
      repeated += 1;
      continue;
    }
    seen.add(value);
    const reason = whyInvalid(value, pattern, isDefaultPattern);
    if (reason === null) valid.push(value);
    else invalid.push({ value, reason });
  }
  return { valid, invalid, repeated, header: read.header, rows: read.rows };
}

// First lines that name the column instead of holding a customer ID.
const HEADER_WORDS = new Set([
  "cid", "cids", "customer", "customers", "customer id", "customer ids", "customer_id", "customerid", "id",
]);

/** Whether the text of a first line (or first cell) is a column header. */
export function isHeader(text) {
  return HEADER_WORDS.has(text.trim().toLowerCase());
}

/** The rows of CSV text, each an array of cells: quoted cells may hold the
 * delimiter, doubled quotes and line breaks. One pass over the text. */
export function csvRows(text, delimiter = ",") {
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else {
        cell += c;
      }
      i += 1;
      continue;
    }
    if (c === '"' && cell.length === 0) {
      quoted = true;
    } else if (c === delimiter) {
      row.push(cell);
      cell = "";
    } else if (c === "\n" || c === "\r") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
      if (c === "\r" && text[i + 1] === "\n") i += 1;
    } else {
      cell += c;
    }
    i += 1;
  }
  if (cell.length > 0 || row.length > 0) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

/**
 * The customer IDs of an uploaded file, for the box. A text file is read
 * exactly as a paste (`pastedValues`: its header line and the extra cells
 * of its rows left out when counted), so it goes in as it is. A CSV file
 * (by its name or type) gives the column headed `cid` (any case), else its
 * first column, one a line; a first line that is a header is left out.
 * Answers `{text, csv, count, column, header}`: for a CSV, how many values
 * it gave, the column used (its header, or null for the first column) and
 * the header line left out, if any.
 */
export function readCidFile(text, name = "", type = "") {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const csv = /\.(csv|tsv)$/i.test(name) || /(csv|tab-separated)/i.test(type);
  if (!csv) return { text: body, csv: false, count: null, column: null, header: null };
  const firstLine = body.slice(0, body.search(/\r|\n|$/));
  const delimiter = /\.tsv$/i.test(name) || (!firstLine.includes(",") && firstLine.includes("\t"))
    ? "\t"
    : !firstLine.includes(",") && firstLine.includes(";") ? ";" : ",";
  const rows = csvRows(body, delimiter);
  if (rows.length === 0) return { text: "", csv: true, count: 0, column: null, header: null };
  const first = rows[0];
  let index = first.findIndex((cell) => cell.trim().toLowerCase() === "cid");
  let column = null;
  let header = null;
  if (index >= 0) {
    column = first[index].trim();
    header = first.join(delimiter);
    rows.shift();
  } else {
    index = 0;
    if (isHeader(first[0] ?? "")) {
      header = first.join(delimiter);
      rows.shift();
    }
  }
  const cids = [];
  for (const row of rows) {
    const value = (row[index] ?? "").trim();
    if (value.length > 0) cids.push(value);
  }
  return { text: cids.join("\n"), csv: true, count: cids.length, column, header };
}
