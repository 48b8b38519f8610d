// The console's modal dialogs, for the keyboard: Tab and Shift+Tab go round
// the dialog's own buttons and fields instead of leaving it for the browser's
// toolbar. Escape cancelling, and the focus going back to what opened the
// dialog, are the browser's own <dialog> behaviour. Shared by every page
// with a dialog.

const FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]):not([type='hidden']), select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex='-1'])";

/** What in `dialog` takes the focus now, in order. */
function focusables(dialog) {
  return [...dialog.querySelectorAll(FOCUSABLE)].filter((el) => !el.closest("[hidden]") && el.getClientRects().length > 0);
}

/** Keeps Tab inside `dialog` while it is open. */
export function keepFocusIn(dialog) {
  dialog.addEventListener("keydown", (event) => {
    if (event.key !== "Tab") return;
    const items = focusables(dialog);
    if (items.length === 0) return;
    const first = items[0];
    const last = items[items.length - 1];
    const at = document.activeElement;
    if (event.shiftKey && (at === first || !dialog.contains(at))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (at === last || !dialog.contains(at))) {
      event.preventDefault();
      first.focus();
    }
  });
}

/** Every <dialog> of the page. */
export function keepFocusInDialogs() {
  for (const dialog of document.querySelectorAll("dialog")) keepFocusIn(dialog);
}
