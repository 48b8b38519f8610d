// The job page's "retry the failed ones": one confirmation, one retry job.
// The key is made once per confirmation and kept for every try of it
// (send.js), the button stays disabled while the request runs, and the
// answer links to the new job.

import { newKey, sendOnce } from "./send.js";
import { keepFocusInDialogs } from "./dialogs.js";

const panel = document.getElementById("retry-panel");
if (panel) init(panel);
keepFocusInDialogs();

function init(panel) {
  const $ = (id) => document.getElementById(id);
  const button = $("retry-failed");
  const dialog = $("retry-dialog");
  const yes = $("retry-yes");
  const no = $("retry-no");
  const includeUnknown = $("retry-include-unknown");
  const reason = $("retry-reason");
  const progress = $("retry-progress");
  const result = $("retry-result");
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
  const jobId = panel.dataset.jobId;
  const failed = Number(panel.dataset.failed) || 0;
  const unknown = Number(panel.dataset.unknown) || 0;
  const unknownOnly = button.dataset.unknownOnly === "true";

  let running = false;
  let asked = false; // the dialog is waiting for this confirmation

  const customers = (n) => `${n} customer${n === 1 ? "" : "s"}`;
  const count = () => (unknownOnly ? unknown : failed + (includeUnknown?.checked ? unknown : 0));
  const describe = () => {
    $("retry-count").textContent = unknownOnly
      ? `the ${customers(unknown)} whose outcome is unknown`
      : `the ${customers(count())} that ${includeUnknown?.checked ? "failed or are unknown" : "failed"}`;
  };

  button.addEventListener("click", () => {
    if (running || dialog.open) return;
    describe();
    asked = true;
    dialog.showModal();
  });
  includeUnknown?.addEventListener("change", describe);
  no.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    asked = false;
  });
  yes.addEventListener("click", async () => {
    // A second click finds nothing asked: one confirmation, one request.
    if (running || !asked) return;
    asked = false;
    const body = { include_unknown: unknownOnly || Boolean(includeUnknown?.checked) };
    const why = reason.value.trim();
    if (why !== "") body.reason = why;
    dialog.close();
    running = true;
    button.disabled = true;
    progress.hidden = false;
    result.hidden = true;
    try {
      const sent = await sendOnce({
        url: `/api/v1/jobs/${encodeURIComponent(jobId)}/retry`,
        body,
        key: newKey(),
        csrf,
        timeoutMs: 45000,
      });
      show(sent);
    } finally {
      running = false;
      progress.hidden = true;
      button.disabled = false;
    }
  });

  function show(sent) {
    const parts = [];
    const line = (text) => {
      const p = document.createElement("p");
      p.textContent = text;
      parts.push(p);
    };
    let kind = "failure";
    if (sent.lost) {
      line("No answer from the server: the retry may have run. Look for it in the Jobs Audit before retrying again.");
    } else {
      const { response, data } = sent;
      const job = data.job;
      if (job) {
        const o = job.outcomes;
        kind = { 201: "success", 207: "partial", 504: "timeout" }[response.status] ?? "failure";
        line(`Retry ${job.status}: ${o.ok} ok, ${o.failed} failed${o.unknown ? `, ${o.unknown} unknown` : ""}.`);
        if (job.error) line(job.error);
        const p = document.createElement("p");
        const a = document.createElement("a");
        a.id = "retry-job";
        a.className = "mono";
        a.href = `/jobs/${encodeURIComponent(job.job_id)}`;
        a.textContent = job.job_id;
        p.append("New job ", a);
        parts.push(p);
      } else {
        kind = "notice";
        line(`Not retried: ${data.detail ?? `the server answered ${response.status}`}`);
      }
    }
    result.replaceChildren(...parts);
    result.className = `result ${kind}`;
    result.dataset.kind = kind;
    result.hidden = false;
    result.focus();
  }

  button.disabled = false;
  panel.dataset.ready = "true";
}
