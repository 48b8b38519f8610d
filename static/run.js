// A run's page, live: while the run goes on it reads the run from the API
// about once a second and updates the progress, the counters, the batch
// table and which buttons apply, without a reload. Pause, resume and
// cancel each ask first and send one POST; the retry makes one new run per
// confirmation (one key, kept for every try of it) and opens its page.

import { newKey, readJson, sendOnce } from "./send.js";
import { keepFocusInDialogs } from "./dialogs.js";

const POLL_MS = 1000;
const SCHEDULED_POLL_MS = 5000;
const numberFormat = new Intl.NumberFormat("en-US");
const number = (n) => numberFormat.format(n);

/** A time as every page shows it: `2026-11-29 10:00:00 UTC`. */
function showTime(iso) {
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? String(iso) : `${t.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** An enum's word as a person reads it: `timed_out` → `timed out`. */
const words = (value) => String(value).replaceAll("_", " ");

/** An id as lists show it: the first 8 and the last 4 hex digits. */
function shortId(id) {
  const hex = String(id).replaceAll("-", "");
  return `${hex.slice(0, 8)}…${hex.slice(-4)}`;
}

function timeElement(iso) {
  const t = document.createElement("time");
  t.dateTime = iso;
  t.textContent = showTime(iso);
  return t;
}

function dash() {
  const s = document.createElement("span");
  s.className = "muted";
  s.textContent = "—";
  return s;
}

function init(page) {
  const $ = (id) => document.getElementById(id);
  const runId = page.dataset.runId;
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
  const status = $("run-status");
  const bar = $("run-progress-bar");
  const progressText = $("run-progress-text");
  const live = $("run-live");
  const message = $("run-message");
  const commandDialog = $("run-command-dialog");
  const retryDialog = $("run-retry-dialog");
  const retryButton = $("run-retry");
  const includeUnknown = $("run-retry-include-unknown");
  const rows = new Map(
    [...document.querySelectorAll("#run-batches tbody tr")].map((tr) => [Number(tr.dataset.index), tr]),
  );

  let run = null; // the run as last read
  let timer = null;
  let busy = false; // a command or retry is on its way
  let asked = null; // the command the dialog asks about
  let retryAsked = false;

  const customers = (n) => `${number(n)} customer${n === 1 ? "" : "s"}`;
  const done = (r) => r.customers.ok + r.customers.failed + r.customers.unknown;
  const over = (r) => r.status === "finished" || r.status === "cancelled";
  // Batches already sent finish after a cancel: keep reading until they have.
  const settled = (r) => over(r) && r.batches.running === 0;
  const retryable = (r) => r.customers.failed + r.customers.unknown + r.customers.not_run;

  function update(r) {
    run = r;
    page.dataset.status = r.status;
    status.textContent = words(r.status);
    status.className = `status run-status-${r.status}`;
    bar.max = Math.max(r.cid_count, 1);
    bar.value = done(r);
    const text = `${number(done(r))} of ${customers(r.cid_count)} done`;
    bar.textContent = text;
    progressText.textContent = text;
    live.textContent = settled(r)
      ? ""
      : over(r)
        ? "· the batches already sent are finishing"
        : r.status === "scheduled"
          ? `· starts at ${showTime(r.run_at)}`
          : "· updated live";
    for (const [name, n] of Object.entries(r.customers)) {
      const el = $(`run-customers-${name}`);
      if (el) el.textContent = number(n);
    }
    for (const [name, n] of Object.entries(r.batches)) {
      const el = $(`run-batches-${name}`);
      if (el) el.textContent = number(n);
    }
    const started = $("run-started");
    if (r.started_at && !started.querySelector("time")) started.replaceChildren(timeElement(r.started_at));
    const finished = $("run-finished");
    if (r.finished_at && !finished.querySelector("time")) finished.replaceChildren(timeElement(r.finished_at));
    for (const button of document.querySelectorAll("#run-steer button[data-applies]")) {
      const applies = button.dataset.applies.split(" ").includes(r.status);
      button.hidden = !applies || (button === retryButton && retryable(r) === 0);
      button.disabled = busy;
    }
  }

  function updateBatches(batches) {
    for (const b of batches) {
      const tr = rows.get(b.batch_index);
      if (!tr) continue;
      const key = `${b.status} ${b.job_id ?? ""} ${b.started_at ?? ""}`;
      if (tr.dataset.key === key) continue;
      tr.dataset.key = key;
      tr.dataset.status = b.status;
      const badge = document.createElement("span");
      badge.className = `status status-${b.status}`;
      badge.textContent = words(b.status);
      tr.querySelector(".batch-status").replaceChildren(badge);
      if (b.job_id) {
        const a = document.createElement("a");
        a.className = "mono";
        a.href = `/jobs/${encodeURIComponent(b.job_id)}`;
        a.title = b.job_id;
        a.textContent = shortId(b.job_id);
        tr.querySelector(".batch-job").replaceChildren(a);
      } else {
        tr.querySelector(".batch-job").replaceChildren(dash());
      }
      tr.querySelector(".batch-started").replaceChildren(b.started_at ? timeElement(b.started_at) : dash());
    }
  }

  async function refresh() {
    try {
      const response = await fetch(`/api/v1/runs/${encodeURIComponent(runId)}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.status === 401) {
        live.textContent = "· logged out: reload the page after logging in";
        return false;
      }
      if (!response.ok) return true;
      const data = await readJson(response);
      if (data.run) {
        update(data.run);
        updateBatches(data.batches ?? []);
        return !settled(data.run);
      }
    } catch {
      // The network came and went: the next read catches up.
    }
    return true;
  }

  /** Reads the run about once a second while it goes on. */
  async function poll() {
    clearTimeout(timer);
    timer = null;
    const goOn = await refresh();
    // A run waiting for its start time changes only when someone acts on it.
    if (goOn) timer = setTimeout(poll, run?.status === "scheduled" ? SCHEDULED_POLL_MS : POLL_MS);
    page.dataset.live = String(goOn);
  }

  function say(kind, lines, link) {
    const parts = lines.map((line) => {
      const p = document.createElement("p");
      p.textContent = line;
      return p;
    });
    if (link) parts.push(link);
    message.replaceChildren(...parts);
    message.className = `result ${kind}`;
    message.dataset.kind = kind;
    message.hidden = false;
    message.focus();
  }

  // Pause, resume, cancel: one confirmation, one POST.
  const questions = {
    pause: {
      title: "Pause this run?",
      text: "No new batch is sent until you resume it. Batches already sent finish.",
      yes: "Pause",
      done: "Paused: no new batch is sent until it is resumed.",
    },
    resume: {
      title: "Resume this run?",
      text: "Its remaining batches are sent again, in order.",
      yes: "Resume",
      done: "Resumed: the remaining batches are being sent.",
    },
    cancel: {
      title: "Cancel this run?",
      text: "Its batches not yet sent are cancelled and their customers not run; batches already sent finish. A cancelled run cannot be resumed.",
      yes: "Cancel the run",
      done: "Cancelled: no new batch is sent; batches already sent finish.",
    },
  };

  for (const button of document.querySelectorAll("#run-steer button[data-command]")) {
    button.addEventListener("click", () => {
      if (busy || commandDialog.open) return;
      const command = button.dataset.command;
      const q = questions[command];
      $("run-command-title").textContent = q.title;
      $("run-command-text").textContent = q.text;
      const yes = $("run-command-yes");
      yes.textContent = q.yes;
      yes.className = command === "cancel" ? "danger" : "primary";
      asked = command;
      commandDialog.showModal();
    });
  }
  $("run-command-no")?.addEventListener("click", () => commandDialog.close());
  commandDialog?.addEventListener("close", () => {
    asked = null;
  });
  $("run-command-yes")?.addEventListener("click", async () => {
    // A second click finds nothing asked: one confirmation, one request.
    if (busy || asked === null) return;
    const command = asked;
    asked = null;
    commandDialog.close();
    busy = true;
    if (run) update(run);
    try {
      const response = await fetch(`/api/v1/runs/${encodeURIComponent(runId)}/${command}`, {
        method: "POST",
        headers: { Accept: "application/json", "X-CSRF-Token": csrf },
        credentials: "same-origin",
        cache: "no-store",
      });
      const data = await readJson(response);
      if (response.ok && data.run) {
        say("success", [questions[command].done]);
        update(data.run);
      } else if (data.code === "invalid_state") {
        say("notice", [`Nothing changed: the run is ${run?.status ?? "no longer in that state"} now.`]);
      } else {
        say("failure", [`Not done: ${data.detail ?? `the server answered ${response.status}`}.`]);
      }
    } catch {
      say("failure", ["No answer from the server. Nothing may have changed: look at the run's status."]);
    } finally {
      busy = false;
      poll();
    }
  });

  // Retry: a new run of the failed customers, one key per confirmation.
  function describeRetry() {
    const c = run?.customers ?? { failed: 0, unknown: 0, not_run: 0 };
    const n = c.failed + (includeUnknown.checked ? c.unknown + c.not_run : 0);
    $("run-retry-count").textContent = includeUnknown.checked
      ? `the ${customers(n)} that failed, are unknown or were not run`
      : `the ${customers(n)} that failed`;
  }
  retryButton?.addEventListener("click", () => {
    if (busy || retryDialog.open) return;
    includeUnknown.checked = (run?.customers.failed ?? 0) === 0;
    describeRetry();
    retryAsked = true;
    retryDialog.showModal();
  });
  includeUnknown?.addEventListener("change", describeRetry);
  $("run-retry-no")?.addEventListener("click", () => retryDialog.close());
  retryDialog?.addEventListener("close", () => {
    retryAsked = false;
  });
  $("run-retry-yes")?.addEventListener("click", async () => {
    if (busy || !retryAsked) return;
    retryAsked = false;
    const body = { include_unknown: includeUnknown.checked };
    const why = $("run-retry-reason").value.trim();
    if (why !== "") body.reason = why;
    retryDialog.close();
    busy = true;
    if (run) update(run);
    try {
      const sent = await sendOnce({
        url: `/api/v1/runs/${encodeURIComponent(runId)}/retry`,
        body,
        key: newKey(),
        csrf,
        timeoutMs: 45000,
      });
      if (sent.lost) {
        say("failure", ["No answer from the server: the retry may have been queued. Look for it on the Runs page before retrying again."]);
      } else if (sent.response.status === 202 && sent.data.run) {
        const next = sent.data.run.run_id;
        const a = document.createElement("a");
        a.id = "run-retry-link";
        a.className = "mono";
        a.href = `/runs/${encodeURIComponent(next)}`;
        a.textContent = next;
        const p = document.createElement("p");
        p.append("New run ", a);
        say("success", [`Retry queued for ${customers(sent.data.run.cid_count)}.`], p);
        window.location.assign(`/runs/${encodeURIComponent(next)}`);
      } else if (sent.data.code === "nothing_to_retry") {
        say("notice", ["Nothing to retry: no customer of this run failed."]);
      } else {
        say("failure", [`Not retried: ${sent.data.detail ?? `the server answered ${sent.response.status}`}.`]);
      }
    } finally {
      busy = false;
      if (run) update(run);
    }
  });

  page.dataset.ready = "true";
  if (page.dataset.over !== "true" || document.querySelector("#run-batches tr[data-status='running']")) {
    poll();
  } else {
    // Over: read once so the buttons match what the API says.
    refresh();
  }
}

const page = document.getElementById("run-page");
if (page) init(page);
keepFocusInDialogs();
