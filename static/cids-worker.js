// Counts a long list of customer IDs off the page's thread, so a paste of
// 100,000 CIDs never freezes the page. The same rules as cids.js, which it
// uses; the valid CIDs come back as one string (one copy, not 100,000).

import { analyseCids, compilePattern } from "./cids.js";

let compiled = { source: null, pattern: null };

self.addEventListener("message", ({ data }) => {
  const { id, text, pattern, isDefaultPattern, shown } = data;
  if (compiled.source !== pattern) compiled = { source: pattern, pattern: compilePattern(pattern) };
  const found = analyseCids(text, compiled.pattern, isDefaultPattern);
  self.postMessage({
    id,
    validText: found.valid.join("\n"),
    validCount: found.valid.length,
    invalid: found.invalid.slice(0, shown),
    invalidCount: found.invalid.length,
    repeated: found.repeated,
    header: found.header,
    rows: found.rows,
  });
});
