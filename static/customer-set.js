// Customer Set: live CID count, confirmation, and exactly one request per
// confirmed click. The idempotency key is made once per confirmation and
// re-sent unchanged on every retry, so the server runs the action once
// whatever the network does; while a request runs nothing else can start.

import { analyseCids, compilePattern, DEFAULT_PATTERN } from "./cids.js";
import { newKey, sendOnce } from "./send.js";

const form = document.getElementById("set-form");
if (form) init(form);

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
  const confirmDialog = $("confirm-dialog");
  const confirmYes = $("confirm-yes");
  const confirmNo = $("confirm-no");
  const duplicateDialog = $("duplicate-dialog");
  const duplicateYes = $("duplicate-yes");
  const duplicateNo = $("duplicate-no");

  const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
  const pattern = compilePattern(form.dataset.cidPattern || DEFAULT_PATTERN);
  const isDefaultPattern = form.dataset.defaultPattern === "true";
  const timeoutMs = Number(form.dataset.timeoutMs) || 45000;
  const upstreamSeconds = Math.round((Number(form.dataset.upstreamTimeoutMs) || 30000) / 1000);

  let running = false; // a confirmed request is on its way
  let pending = null; // the request the confirmation dialog asks about
  let duplicate = null; // the request the duplicate dialog asks about
  let ticker = null;

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

  function count() {
    const found = analyseCids(cids.value, pattern, isDefaultPattern);
    const tooMany = found.valid.length > maxCids();
    counter.querySelector(".count-valid").textContent =
      `${found.valid.length} valid` + (tooMany ? ` (at most ${maxCids()})` : "");
    counter.querySelector(".count-invalid").textContent = `${found.invalid.length} invalid`;
    counter.querySelector(".count-repeated").textContent = `${found.repeated} repeated`;
    counter.classList.toggle("has-invalid", found.invalid.length > 0);
    counter.classList.toggle("too-many", tooMany);
    cids.setAttribute("aria-invalid", String(found.invalid.length > 0 || tooMany));
    invalidList.replaceChildren(
      ...found.invalid.map(({ value, reason }) => {
        const item = document.createElement("li");
        const code = document.createElement("code");
        code.textContent = value;
        item.append(code, ` — ${reason}`);
        return item;
      }),
    );
    invalidList.hidden = found.invalid.length === 0;
    return found;
  }

  /** The request to send, or why there is none yet. */
  function prepare() {
    const found = count();
    if (found.invalid.length > 0) {
      const list = found.invalid.map((i) => i.value).join(", ");
      return refuse(`Fix or remove the invalid customer IDs first: ${list}.`, cids);
    }
    if (found.valid.length === 0) return refuse("Type at least one customer ID.", cids);
    if (found.valid.length > maxCids()) {
      return refuse(`${action.value} takes at most ${maxCids()} customer IDs; you have ${found.valid.length}.`, cids);
    }
    const body = { cluster: cluster.value, action: action.value, cids: found.valid };
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
    return { body };
  }

  function refuse(message, field) {
    show("notice", "Not sent", [message]);
    field.focus();
    return null;
  }

  function askConfirmation() {
    if (running || confirmDialog.open || duplicateDialog.open) return;
    const prepared = prepare();
    if (!prepared) return;
    pending = prepared.body;
    $("confirm-action").textContent = pending.action;
    $("confirm-cluster").textContent = clusterOption()?.textContent ?? pending.cluster;
    const n = pending.cids.length;
    $("confirm-count").textContent = `${n} customer ID${n === 1 ? "" : "s"}`;
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
    const body = pending;
    pending = null;
    confirmDialog.close();
    send(body, newKey());
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
    duplicate = null;
    duplicateDialog.close();
    send(body, newKey());
  });
  duplicateNo.addEventListener("click", () => {
    const earlier = duplicate?.problem;
    duplicate = null;
    duplicateDialog.close();
    show("notice", "Not run", ["The earlier job stands; nothing new was run."], earlier?.job_id);
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

  async function send(body, key) {
    running = true;
    result.hidden = true;
    setBusy(true);
    try {
      const sent = await sendOnce({
        url: "/api/v1/actions",
        body,
        key,
        csrf,
        timeoutMs,
        onWait: (text) => setBusy(true, text),
      });
      if (sent.lost) lost(key);
      else answer(sent.response, sent.data, body);
    } finally {
      running = false;
      setBusy(false);
    }
  }

  function lost(key) {
    show("failure", "No answer from the server", [
      "The connection failed several times, so the outcome is not known here.",
      "The request may have run: look for it in the Jobs Audit before running it again.",
      `(Request key ${key})`,
    ]);
    const link = document.createElement("p");
    const a = document.createElement("a");
    a.href = "/jobs";
    a.textContent = "Open the Jobs Audit";
    link.append(a);
    result.append(link);
  }

  function answer(response, data, body) {
    const job = data.job;
    const replayed = response.headers.get("Idempotent-Replayed") === "true";
    const again = replayed ? ["This request had already run; this is its recorded answer."] : [];
    const cidsText = (n) => `${n} customer ID${n === 1 ? "" : "s"}`;
    switch (response.status) {
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
        conflict(data, body);
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
        show("failure", "Too large", ["The request is larger than 256 KiB: split the customer IDs into several runs. Nothing was run."]);
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

  function conflict(data, body) {
    switch (data.code) {
      case "recent_duplicate":
        duplicate = { body, problem: data };
        $("duplicate-user").textContent = data.user ?? "someone";
        $("duplicate-when").textContent = when(data.created_at);
        {
          const link = $("duplicate-job");
          link.href = `/jobs/${encodeURIComponent(data.job_id)}`;
          link.textContent = data.job_id;
        }
        show("notice", "Not run yet", ["The same action on the same customer IDs ran a moment ago."], data.job_id);
        duplicateDialog.showModal();
        return;
      case "cids_busy":
        show("failure", "Customer IDs busy", [
          `${(data.busy ?? []).join(", ")} ${data.busy?.length === 1 ? "is" : "are"} in a job still running. Wait for it to finish, then try again. Nothing was run.`,
        ], data.job_id);
        return;
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
      too_many_cids: `Too many customer IDs: this action takes at most ${data.max}.`,
      token_required: "This cluster needs your token: type it in “Cluster token”.",
      reason_required: data.detail,
      idempotency_key_reused: "This request's key was already used for a different request. Confirm again to send it as a new request.",
    };
    let lines;
    if (data.code === "invalid_cids") {
      lines = ["The server refused these customer IDs:", ...(data.invalid ?? []).map((i) => `${i.value} — ${i.reason}`)];
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

  /** Fills the result panel; the job link is `#job-id`. */
  function show(kind, title, lines, jobId) {
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
    return `${t.toLocaleString()} (${ago})`;
  }

  cluster.addEventListener("change", onCluster);
  action.addEventListener("change", onAction);
  cids.addEventListener("input", count);
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

