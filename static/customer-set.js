// Customer Set: live CID count, confirmation, and exactly one request per
// confirmed click. The idempotency key is made once per confirmation and
// re-sent unchanged on every retry, so the server runs the action once
// whatever the network does; while a request runs nothing else can start.
// More CIDs than the action's `max_cids` (up to the server's
// `max_run_cids`) are sent as one run, which the server splits in batches.
// Counting stays smooth for 100,000 CIDs: one pass, no node per CID, and
// typing re-counts a large list only once it pauses.

import { analyseCids, compilePattern, DEFAULT_PATTERN, readCidFile } from "./cids.js";
import { newKey, sendOnce } from "./send.js";
import { keepFocusInDialogs } from "./dialogs.js";

/** Invalid CIDs listed by value at most; the rest are counted. */
const SHOWN_INVALID = 100;
/** Text this long (about 4,000 CIDs) is re-counted once typing pauses. */
const LARGE_TEXT = 40000;
const COUNT_DELAY_MS = 150;

const numberFormat = new Intl.NumberFormat("en-US");
/** A count as the page shows it: `1,203`. */
function number(n) {
  return numberFormat.format(n);
}

/** A `datetime-local` value for a time, in the browser's zone. */
function localInput(t) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}T${pad(t.getHours())}:${pad(t.getMinutes())}`;
}

/** A time as every page shows it: `2026-11-29 10:00:00 UTC`. */
function showTime(iso) {
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? String(iso) : `${t.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** The CIDs for the confirmation: all of them up to 50, otherwise the
 * first 25 and the last 25 with the number between. */
function listForConfirmation(list) {
  if (list.length <= 50) return list.join(", ");
  const between = list.length - 50;
  return `${list.slice(0, 25).join(", ")} … ${number(between)} more … ${list.slice(-25).join(", ")}`;
}

const form = document.getElementById("set-form");
if (form) init(form);
keepFocusInDialogs();

function init(form) {
  const $ = (id) => document.getElementById(id);
  const cluster = $("cluster");
  const action = $("action");
  const cids = $("cids");
  const token = $("token");
  const tokenField = $("token-field");
  const reason = $("reason");
  const reasonNote = $("reason-note");
  const description = $("action-description");
  const button = $("set-action");
  const progress = $("progress");
  const progressText = $("progress-text");
  const counter = $("cid-count");
  const invalidList = $("cid-invalid");
  const result = $("result");
  const file = $("cids-file");
  const fileNote = $("cids-file-note");
  const runAt = $("run-at");
  const runAtField = $("run-at-field");
  const confirmDialog = $("confirm-dialog");
  const confirmYes = $("confirm-yes");
  const confirmNo = $("confirm-no");
  const duplicateDialog = $("duplicate-dialog");
  const duplicateYes = $("duplicate-yes");
  const duplicateNo = $("duplicate-no");

  const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
  const patternSource = form.dataset.cidPattern || DEFAULT_PATTERN;
  const pattern = compilePattern(patternSource);
  const isDefaultPattern = form.dataset.defaultPattern === "true";
  const timeoutMs = Number(form.dataset.timeoutMs) || 45000;
  const upstreamSeconds = Math.round((Number(form.dataset.upstreamTimeoutMs) || 30000) / 1000);
  const maxRunCids = Number(form.dataset.maxRunCids) || 100000;
  const me = form.dataset.user ?? "";
  const seesAllJobs = form.dataset.seesAllJobs === "true";
  /** Whether this person may open a job or run `user` started (operators
   * open only their own); a page links it only then. */
  const mayOpen = (user) => seesAllJobs || user === me;

  let running = false; // a confirmed request is on its way
  let pending = null; // the request the confirmation dialog asks about
  let duplicate = null; // the request the duplicate dialog asks about
  let ticker = null;
  let counted = null; // the last count: {text, found}
  let counting = null; // the count on its way: {text, promise}
  let countTimer = null;
  let worker = null; // the counting worker; false when it cannot run
  let lastRequest = 0;
  const waiting = new Map(); // worker requests by id
  let asking = false; // the confirmation is being prepared

  const actionOption = () => action.selectedOptions[0];
  const clusterOption = () => cluster.selectedOptions[0];
  const needsToken = () => clusterOption()?.dataset.needsToken === "true";
  const maxCids = () => Number(actionOption()?.dataset.maxCids) || 500;
  const reasonRequired = () => actionOption()?.dataset.reasonRequired === "true";

  function onCluster() {
    tokenField.hidden = !needsToken();
  }

  function onAction() {
    description.textContent = actionOption()?.dataset.description ?? "";
    reasonNote.textContent = reasonRequired() ? "(required for this action)" : "(optional)";
    reason.required = reasonRequired();
    count();
  }

  /** The counts of `text`: on this thread for a short text, in the worker
   * for a long one. Answers `{validCount, valid(), invalid (the first
   * SHOWN_INVALID), invalidCount, repeated, header (the header line left
   * out, or null), rows (lines whose extra cells were ignored)}`. */
  function analyse(text) {
    if (text.length >= LARGE_TEXT) {
      const w = countWorker();
      if (w) {
        return new Promise((resolve) => {
          const id = ++lastRequest;
          waiting.set(id, resolve);
          w.postMessage({ id, text, pattern: patternSource, isDefaultPattern, shown: SHOWN_INVALID });
        }).then((r) => {
          let list = null;
          return {
            validCount: r.validCount,
            valid: () => (list ??= r.validText === "" ? [] : r.validText.split("\n")),
            invalid: r.invalid,
            invalidCount: r.invalidCount,
            repeated: r.repeated,
            header: r.header,
            rows: r.rows,
          };
        });
      }
    }
    const found = analyseCids(text, pattern, isDefaultPattern);
    return Promise.resolve({
      validCount: found.valid.length,
      valid: () => found.valid,
      invalid: found.invalid.slice(0, SHOWN_INVALID),
      invalidCount: found.invalid.length,
      repeated: found.repeated,
      header: found.header,
      rows: found.rows,
    });
  }

  /** The worker that counts long lists, or null where none can start. */
  function countWorker() {
    if (worker === null && form.dataset.workerUrl && typeof Worker === "function") {
      try {
        worker = new Worker(form.dataset.workerUrl, { type: "module" });
        worker.addEventListener("message", ({ data }) => {
          waiting.get(data.id)?.(data);
          waiting.delete(data.id);
        });
        worker.addEventListener("error", () => {
          worker = false;
        });
      } catch {
        worker = false;
      }
    }
    return worker || null;
  }

  /** Counts the CIDs (once per text) and shows the counts; answers them. */
  function count() {
    clearTimeout(countTimer);
    countTimer = null;
    const text = cids.value;
    if (counted && counted.text === text) {
      showCounts(counted.found);
      return Promise.resolve(counted.found);
    }
    if (counting && counting.text === text) return counting.promise;
    const promise = analyse(text).then((found) => {
      if (counting?.promise === promise) counting = null;
      counted = { text, found };
      // A newer text is being counted: its answer shows instead.
      if (cids.value === text) showCounts(found);
      return found;
    });
    counting = { text, promise };
    return promise;
  }

  function showCounts(found) {
    const n = found.validCount;
    const tooMany = n > maxRunCids;
    const batches = batchCount(n);
    counter.querySelector(".count-valid").textContent =
      `${number(n)} valid` +
      (tooMany ? ` (at most ${number(maxRunCids)} in one run)` : n > maxCids() ? ` (a run of ${number(batches)} batches)` : "");
    counter.querySelector(".count-invalid").textContent = `${number(found.invalidCount)} invalid`;
    counter.querySelector(".count-repeated").textContent = `${number(found.repeated)} repeated`;
    const read = readNotes(found);
    const notes = counter.querySelector(".count-read");
    notes.textContent = read.map((note) => ` · ${note}`).join("");
    notes.hidden = read.length === 0;
    counter.classList.toggle("has-invalid", found.invalidCount > 0);
    counter.classList.toggle("too-many", tooMany);
    cids.setAttribute("aria-invalid", String(found.invalidCount > 0 || tooMany));
    // At most SHOWN_INVALID items: a list of 100,000 bad values would freeze the page.
    const items = found.invalid.map(({ value, reason }) => {
      const item = document.createElement("li");
      const code = document.createElement("code");
      code.textContent = value;
      item.append(code, ` — ${reason}`);
      return item;
    });
    if (found.invalidCount > found.invalid.length) {
      const more = document.createElement("li");
      more.className = "more";
      more.textContent = `… and ${number(found.invalidCount - found.invalid.length)} more`;
      items.push(more);
    }
    invalidList.replaceChildren(...items);
    invalidList.hidden = found.invalidCount === 0;
  }

  /** What the count left out of the text, as sentences for the counter
   * and the file note: the header line, the extra cells of spreadsheet rows. */
  function readNotes(found) {
    const notes = [];
    if (found.header !== null) notes.push(`header “${found.header}” left out`);
    if (found.rows > 0) {
      notes.push(
        `${number(found.rows)} line${found.rows === 1 ? "" : "s"} with extra cells (only the first cell of each is a customer ID)`,
      );
    }
    return notes;
  }

  /** Typing in a long list re-counts it once the typing pauses; a short
   * one is counted at once. */
  function countSoon() {
    clearTimeout(countTimer);
    if (cids.value.length < LARGE_TEXT) count();
    else countTimer = setTimeout(count, COUNT_DELAY_MS);
  }

  const batchCount = (n) => Math.ceil(n / maxCids());

  async function readFile() {
    const chosen = file.files?.[0];
    if (!chosen) return;
    let text;
    try {
      text = await chosen.text();
    } catch {
      fileNote.textContent = `${chosen.name} could not be read.`;
      fileNote.hidden = false;
      return;
    }
    const read = readCidFile(text, chosen.name, chosen.type);
    cids.value = read.text;
    const found = await count();
    if (read.csv) {
      const from = read.column ? ` (column “${read.column}”)` : "";
      const skipped = read.header !== null ? ` The header line “${read.header}” was left out.` : "";
      fileNote.textContent = `Read ${number(read.count)} line${read.count === 1 ? "" : "s"} from ${chosen.name}${from}.${skipped} They are in the box above, counted as pasted.`;
    } else {
      const left = readNotes(found);
      const skipped = left.length > 0 ? ` Left out: ${left.join("; ")}.` : "";
      fileNote.textContent = `Read ${chosen.name} into the box above, counted as pasted: ${number(found.validCount)} valid.${skipped}`;
    }
    fileNote.hidden = false;
  }

  /** The request to send, or why there is none yet. */
  async function prepare() {
    const found = await count();
    if (found.invalidCount > 0) {
      const shown = found.invalid.map((i) => i.value).join(", ");
      const more = found.invalidCount > found.invalid.length ? ` and ${number(found.invalidCount - found.invalid.length)} more` : "";
      return refuse(`Fix or remove the invalid customer IDs first: ${shown}${more}.`, cids);
    }
    const n = found.validCount;
    if (n === 0) return refuse("Type at least one customer ID.", cids);
    if (n > maxRunCids) {
      return refuse(
        `One run takes at most ${number(maxRunCids)} customer IDs; you have ${number(n)}. Split them into several runs.`,
        cids,
      );
    }
    const run = n > maxCids();
    const body = { cluster: cluster.value, action: action.value, cids: found.valid() };
    if (run && needsToken()) {
      return refuse(
        `${number(n)} customer IDs are more than one job takes (${maxCids()}), so they would run as a run in the background; this cluster has no token on the server, and a typed token is never kept. Pick a cluster with a server-side token, or send at most ${maxCids()} at a time.`,
        cluster,
      );
    }
    if (needsToken()) {
      if (token.value.trim() === "") return refuse("This cluster needs your token: type it in “Cluster token”.", token);
      body.token = token.value;
    }
    const why = reason.value.trim();
    if (why !== "" || reasonRequired()) {
      const length = [...why].length;
      if (length < 3 || length > 500) {
        return refuse(`${action.value} needs a reason (a ticket or a sentence) of 3 to 500 characters.`, reason);
      }
      body.reason = why;
    }
    return { body, run };
  }

  function refuse(message, field) {
    show("notice", "Not sent", [message]);
    field.focus();
    return null;
  }

  async function askConfirmation() {
    if (running || asking || confirmDialog.open || duplicateDialog.open) return;
    asking = true;
    let prepared;
    try {
      prepared = await prepare();
    } finally {
      asking = false;
    }
    if (!prepared || running || confirmDialog.open || duplicateDialog.open) return;
    pending = prepared;
    const body = prepared.body;
    $("confirm-action").textContent = body.action;
    $("confirm-cluster").textContent = clusterOption()?.textContent ?? body.cluster;
    const n = body.cids.length;
    $("confirm-count").textContent = `${number(n)} customer ID${n === 1 ? "" : "s"}`;
    const batches = $("confirm-batches");
    batches.hidden = !prepared.run;
    runAtField.hidden = !prepared.run;
    if (prepared.run) {
      const b = batchCount(n);
      batches.textContent = `As one run in ${number(b)} batches of at most ${number(maxCids())}, sent in order in the background; its page shows the progress.`;
      $("confirm-title").textContent = "Start this run?";
      $("confirm-hint").textContent = "One confirmation makes exactly one run; each batch becomes one job when it is sent.";
      confirmYes.textContent = "Start the run";
      const now = new Date();
      runAt.min = localInput(now);
      runAt.max = localInput(new Date(now.getTime() + 30 * 24 * 3600 * 1000));
    } else {
      $("confirm-title").textContent = "Run this action?";
      $("confirm-hint").textContent = "The cluster applies it right away. One confirmation makes exactly one job.";
      confirmYes.textContent = "Run it";
    }
    $("confirm-cids").textContent = listForConfirmation(body.cids);
    confirmDialog.showModal();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    askConfirmation();
  });

  confirmYes.addEventListener("click", () => {
    // A second click, a second Enter or a click on a closed dialog finds no
    // pending request: one confirmation sends one request.
    if (running || !confirmDialog.open || pending === null) return;
    const { body, run } = pending;
    if (run && runAt.value !== "") {
      const at = new Date(runAt.value);
      if (Number.isNaN(at.getTime()) || at.getTime() <= Date.now()) {
        runAt.setCustomValidity("Pick a time in the future, or leave it empty to start now.");
        runAt.reportValidity();
        return;
      }
      body.run_at = at.toISOString();
    }
    runAt.setCustomValidity("");
    pending = null;
    confirmDialog.close();
    send(body, newKey(), run);
  });
  confirmNo.addEventListener("click", () => {
    pending = null;
    confirmDialog.close();
  });
  confirmDialog.addEventListener("close", () => {
    pending = null;
  });

  // The recent-duplicate guard refused the request and no job was made for
  // it. Running it anyway is a new decision, so it gets a new key; the body
  // is the same with `confirm_duplicate: true`.
  duplicateYes.addEventListener("click", () => {
    if (running || !duplicateDialog.open || duplicate === null) return;
    const body = { ...duplicate.body, confirm_duplicate: true };
    const run = duplicate.run;
    duplicate = null;
    duplicateDialog.close();
    send(body, newKey(), run);
  });
  duplicateNo.addEventListener("click", () => {
    const earlier = duplicate?.problem;
    const open = duplicate?.open ?? false;
    duplicate = null;
    duplicateDialog.close();
    if (earlier?.approval_id) {
      show("notice", "Not run", ["The request awaiting approval stands; nothing new was run."], null, null, earlier.approval_id);
    } else if (earlier?.run_id) {
      show("notice", "Not run", ["The earlier run stands; nothing new was run."], null, open ? earlier.run_id : null);
    } else {
      show("notice", "Not run", ["The earlier job stands; nothing new was run."], open ? earlier?.job_id : null);
    }
  });
  duplicateDialog.addEventListener("close", () => {
    duplicate = null;
  });

  function setBusy(busy, label = "Waiting for the cluster's answer…") {
    button.disabled = busy;
    button.setAttribute("aria-busy", String(busy));
    button.textContent = busy ? "Running…" : "Set Action";
    progress.hidden = !busy;
    clearInterval(ticker);
    if (busy) {
      const started = Date.now();
      const tick = () => {
        progressText.textContent = `${label} ${Math.floor((Date.now() - started) / 1000)} s`;
      };
      tick();
      ticker = setInterval(tick, 1000);
    }
  }

  async function send(body, key, run = false) {
    running = true;
    result.hidden = true;
    setBusy(true, run ? "Queuing the run…" : undefined);
    try {
      const sent = await sendOnce({
        url: run ? "/api/v1/runs" : "/api/v1/actions",
        body,
        key,
        csrf,
        timeoutMs,
        onWait: (text) => setBusy(true, text),
      });
      if (sent.lost) lost(key, run);
      else answer(sent.response, sent.data, body, run);
    } finally {
      running = false;
      setBusy(false);
    }
  }

  function lost(key, run) {
    show("failure", "No answer from the server", [
      "The connection failed several times, so the outcome is not known here.",
      run
        ? "The run may have been queued: look for it on the Runs page before starting it again."
        : "The request may have run: look for it in the Jobs Audit before running it again.",
      `(Request key ${key})`,
    ]);
    const link = document.createElement("p");
    const a = document.createElement("a");
    a.href = run ? "/runs" : "/jobs";
    a.textContent = run ? "Open the Runs page" : "Open the Jobs Audit";
    link.append(a);
    result.append(link);
  }

  function answer(response, data, body, run) {
    const job = data.job;
    const replayed = response.headers.get("Idempotent-Replayed") === "true";
    const again = replayed ? ["This request had already run; this is its recorded answer."] : [];
    const cidsText = (n) => `${number(n)} customer ID${n === 1 ? "" : "s"}`;
    switch (response.status) {
      case 202: {
        if (data.approval) {
          const a = data.approval;
          const what = a.kind === "run"
            ? `${a.action} on ${cidsText(a.cid_count)} in ${a.cluster}, as a run in batches of at most ${number(a.batch_size)}`
            : `${a.action} on ${cidsText(a.cid_count)} in ${a.cluster}`;
          show("notice", "Waiting for approval", [
            `${what} needs a second person: an admin or operator other than you approves it, and only then does it run. Nothing was run yet.`,
            `The request waits until ${showTime(a.expires_at)}.`,
            ...again,
          ], null, null, a.approval_id);
          return;
        }
        const r = data.run;
        const when = r.run_at ? `It starts at ${showTime(r.run_at)}.` : "Its batches are being sent now.";
        show("success", r.run_at ? "Run scheduled" : "Run started", [
          `${r.action} on ${cidsText(r.cid_count)} in ${r.cluster}, in ${number(r.batch_count)} batches of at most ${number(r.batch_size)}. ${when}`,
          ...again,
        ], null, r.run_id);
        return;
      }
      case 201:
        show("success", "Succeeded", [
          `${job.action} on ${cidsText(job.cid_count)} in ${job.cluster}: the cluster applied it.`,
          ...again,
        ], job.job_id);
        return;
      case 207: {
        const o = job.outcomes;
        show("partial", "Partly applied", [
          `${job.action} in ${job.cluster}: ${o.ok} ok, ${o.failed} failed${o.unknown ? `, ${o.unknown} unknown` : ""}.`,
          ...(job.error ? [sentence(job.error)] : []),
          "The job's page lists each customer and can retry the failed ones.",
          ...again,
        ], job.job_id);
        return;
      }
      case 502:
        if (job?.status === "unknown") {
          show("failure", "Outcome unknown", [sentence(job.error ?? "the outcome was not recorded"), ...again], job.job_id);
        } else {
          show("failure", "Failed", [
            `${body.action} on ${cidsText(body.cids.length)} in ${body.cluster} failed.`,
            sentence(job?.error ?? "the cluster refused it"),
            ...again,
          ], job?.job_id);
        }
        return;
      case 504:
        show("timeout", "Timed out", [
          sentence(job?.error ?? `the cluster did not answer within ${upstreamSeconds} s`),
          "The cluster may still have applied it: check there before running it again.",
          ...again,
        ], job?.job_id);
        return;
      case 409:
        conflict(data, body, run);
        return;
      case 422:
        unprocessable(data);
        return;
      case 401:
        sessionExpired();
        return;
      case 403:
        show("failure", "Not allowed", [
          data.code === "csrf_failed"
            ? "This page's security token is out of date (you may have logged in again elsewhere). Reload the page and try again. Nothing was run."
            : "Your role may not run actions. Nothing was run.",
        ]);
        return;
      case 413:
        show("failure", "Too large", [
          run
            ? "The request is larger than 4 MiB: split the customer IDs into several runs. Nothing was run."
            : "The request is larger than 256 KiB: split the customer IDs into several runs. Nothing was run.",
        ]);
        return;
      case 400:
        show("failure", "Refused", [`The server refused the request: ${data.detail ?? "malformed request"}. Nothing was run.`]);
        return;
      default:
        show("failure", `Server error (${response.status})`, [
          `${data.detail ?? "The server could not answer."}`,
          "Look for the request in the Jobs Audit before running it again.",
        ]);
    }
  }

  function conflict(data, body, run) {
    switch (data.code) {
      case "recent_duplicate": {
        duplicate = { body, problem: data, run };
        const holder = data.user ?? "someone";
        const open = Boolean(data.approval_id) || mayOpen(data.user);
        duplicate.open = open;
        $("duplicate-user").textContent = holder;
        $("duplicate-when").textContent = when(data.created_at);
        const link = $("duplicate-job");
        const runId = data.run_id;
        const approvalId = data.approval_id;
        link.href = approvalId
          ? `/approvals/${encodeURIComponent(approvalId)}`
          : runId ? `/runs/${encodeURIComponent(runId)}` : `/jobs/${encodeURIComponent(data.job_id)}`;
        link.textContent = approvalId ?? runId ?? data.job_id;
        link.hidden = !open;
        $("duplicate-closed").hidden = open;
        $("duplicate-kind").textContent = approvalId ? "request awaiting approval" : runId ? "run" : "job";
        const by = `${holder}, ${showTime(data.created_at)}`;
        if (approvalId) {
          show("notice", "Not run yet", ["The same action on the same customer IDs already waits for approval."], null, null, approvalId);
        } else if (runId) {
          show("notice", "Not run yet", [
            open
              ? "The same action on the same customer IDs was started as a run a moment ago."
              : `The same action on the same customer IDs was started as a run a moment ago (by ${by}).`,
          ], null, open ? runId : null);
        } else {
          show("notice", "Not run yet", [
            open
              ? "The same action on the same customer IDs ran a moment ago."
              : `The same action on the same customer IDs ran a moment ago (by ${by}).`,
          ], open ? data.job_id : null);
        }
        duplicateDialog.showModal();
        return;
      }
      case "cids_busy": {
        const busy = data.busy ?? [];
        const open = mayOpen(data.user);
        const holder = data.user && data.user !== me ? `${data.user}'s job` : "a job";
        const since = data.created_at ? `, started ${showTime(data.created_at)}` : "";
        show("failure", "Customer IDs busy", [
          `${busy.join(", ")} ${busy.length === 1 ? "is" : "are"} in ${holder} still running${since}. Wait for it to finish, then try again. Nothing was run.`,
        ], open ? data.job_id : null);
        return;
      }
      case "request_in_progress":
        show("notice", "Still running", ["This request is still running on the cluster. Its job will show the outcome."], data.job_id);
        return;
      default:
        show("failure", "Conflict", [`${data.detail ?? "The request conflicts with another."} Nothing was run.`]);
    }
  }

  function unprocessable(data) {
    const messages = {
      unknown_cluster: "This cluster is not configured on the server (any more). Reload the page.",
      unknown_action: "This action is not configured on the server (any more). Reload the page.",
      no_cids: "Type at least one customer ID.",
      too_many_cids: `Too many customer IDs: at most ${number(data.max ?? 0)}.`,
      token_required: "This cluster needs your token: type it in “Cluster token”.",
      reason_required: data.detail,
      idempotency_key_reused: "This request's key was already used for a different request. Confirm again to send it as a new request.",
    };
    let lines;
    if (data.code === "invalid_cids") {
      const listed = (data.invalid ?? []).slice(0, SHOWN_INVALID);
      const more = (data.invalid_count ?? listed.length) - listed.length;
      lines = [
        "The server refused these customer IDs:",
        ...listed.map((i) => `${i.value} — ${i.reason}`),
        ...(more > 0 ? [`… and ${number(more)} more.`] : []),
      ];
    } else {
      lines = [messages[data.code] ?? data.detail ?? "The request was refused."];
    }
    show("failure", "Not run", [...lines, "Nothing was run."]);
    if (data.code === "token_required") token.focus();
    if (data.code === "reason_required") reason.focus();
  }

  function sessionExpired() {
    show("failure", "Session expired", ["You are logged out, so nothing was run. Log in again, then run the action again."]);
    const p = document.createElement("p");
    const a = document.createElement("a");
    a.href = "/login?next=%2F";
    a.id = "login-again";
    a.textContent = "Log in again";
    p.append(a);
    result.append(p);
  }

  /** Fills the result panel; the job link is `#job-id`, a run's `#run-link`, an approval's `#approval-link`. */
  function show(kind, title, lines, jobId, runId, approvalId) {
    const heading = document.createElement("h2");
    heading.id = "result-title";
    heading.textContent = title;
    const parts = [heading];
    for (const line of lines) {
      const p = document.createElement("p");
      p.textContent = line;
      parts.push(p);
    }
    if (jobId) {
      const p = document.createElement("p");
      const a = document.createElement("a");
      a.id = "job-id";
      a.className = "mono";
      a.href = `/jobs/${encodeURIComponent(jobId)}`;
      a.textContent = jobId;
      p.append("Job ", a);
      parts.push(p);
    }
    if (runId) {
      const p = document.createElement("p");
      const a = document.createElement("a");
      a.id = "run-link";
      a.className = "mono";
      a.href = `/runs/${encodeURIComponent(runId)}`;
      a.textContent = runId;
      p.append("Run ", a, " — its page shows each batch as it goes.");
      parts.push(p);
    }
    if (approvalId) {
      const p = document.createElement("p");
      const a = document.createElement("a");
      a.id = "approval-link";
      a.className = "mono";
      a.href = `/approvals/${encodeURIComponent(approvalId)}`;
      a.textContent = approvalId;
      p.append("Approval ", a, " — send this link to the person who approves it.");
      parts.push(p);
    }
    result.replaceChildren(...parts);
    result.className = `result ${kind}`;
    result.dataset.kind = kind;
    result.hidden = false;
    result.focus();
  }

  function when(iso) {
    const t = new Date(iso);
    if (Number.isNaN(t.getTime())) return iso ?? "a moment ago";
    const minutes = Math.round((Date.now() - t.getTime()) / 60000);
    const ago = minutes < 1 ? "less than a minute ago" : `${minutes} min ago`;
    return `${showTime(iso)} (${ago})`;
  }

  cluster.addEventListener("change", onCluster);
  action.addEventListener("change", onAction);
  cids.addEventListener("input", countSoon);
  file.addEventListener("change", readFile);
  window.addEventListener("beforeunload", (event) => {
    if (running) event.preventDefault();
  });
  onCluster();
  onAction();
  button.disabled = false;
  form.dataset.ready = "true";
}

/** A message from the server as a sentence: capital first, full stop last. */
function sentence(text) {
  const t = String(text).trim();
  if (t === "") return t;
  const first = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

