// Exactly once, from the browser: a request made under one idempotency key,
// sent again with the same key when the network fails, and waited for while
// an earlier try of it still runs, so the server runs it once whatever the
// network does. Shared by the Customer Set and the job page's retry.

const MAX_ATTEMPTS = 3;

/**
 * POSTs `body` to `url` under `key` and answers `{response, data}` once the
 * server has answered for good, or `{lost: true}` when it could not be
 * reached after a few tries. `onWait(text)` hears what it is waiting for.
 */
export async function sendOnce({ url, body, key, csrf, timeoutMs, onWait = () => {} }) {
  const giveUpAt = Date.now() + 3 * timeoutMs;
  let failures = 0;
  for (;;) {
    let response;
    try {
      response = await post(url, body, key, csrf, timeoutMs);
    } catch {
      failures += 1;
      if (failures >= MAX_ATTEMPTS || Date.now() > giveUpAt) return { lost: true };
      onWait(`No answer; sending the same request again (try ${failures + 1} of ${MAX_ATTEMPTS})…`);
      await sleep(1000 * failures);
      continue;
    }
    const data = await readJson(response);
    if (response.status === 409 && data.code === "request_in_progress" && Date.now() < giveUpAt) {
      // An earlier try of this same request is still running: its answer
      // comes back under the same key once it is done.
      onWait("Still running on the cluster…");
      await sleep(1000);
      continue;
    }
    return { response, data };
  }
}

async function post(url, body, key, csrf, timeoutMs) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    return await fetch(url, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "Idempotency-Key": key,
        "X-CSRF-Token": csrf,
      },
      body: JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      signal: controller.signal,
    });
  } finally {
    clearTimeout(timer);
  }
}

export async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return {};
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A fresh UUID; `crypto.randomUUID` needs a secure context, so plain HTTP
 * on a LAN address falls back to the same from `getRandomValues`. */
export function newKey() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
