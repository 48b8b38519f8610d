// On a phone, the filter boxes start folded so the first screen shows the
// results; a desktop (and a phone without script) shows them open. A classic
// script at the end of the page, so it runs before the first paint.
if (window.matchMedia("(max-width: 760px)").matches) {
  for (const box of document.querySelectorAll("details.filter-box[open]")) box.open = false;
}
