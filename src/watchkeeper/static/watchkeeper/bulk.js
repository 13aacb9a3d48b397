/*
 * Bulk selection in a list form (Gmail / Jira style). Progressive enhancement: without
 * JavaScript the row checkboxes still post their ids.
 *
 * Markup, inside <form data-bulk-form data-bulk-total="N" data-bulk-total-text="1,234">:
 * - input[type=checkbox][data-bulk-item]   one per row (posts name="ids").
 * - input[type=checkbox][data-bulk-page]   the header box: checks or clears the page; it is
 *                                          indeterminate while only some rows are checked.
 * - [data-bulk-count]                      a live region saying what is selected.
 * - input[data-bulk-scope]                 "ids", or "filter" once "select all matching" is
 *                                          chosen (the server then acts on the filter).
 * - [data-bulk-banner]                     shown when the whole page is checked and more
 *                                          rows match: holds [data-bulk-banner-page] text
 *                                          with a [data-bulk-select-all] button, and
 *                                          [data-bulk-banner-all] text with [data-bulk-clear].
 *
 * Shift+click on a row box, or Shift+Space on a focused one, sets every box between it and
 * the box used last to its new state. Space alone toggles one box (the browser's own).
 */
(function () {
  "use strict";

  function items(form) {
    return Array.prototype.slice.call(form.querySelectorAll("input[data-bulk-item]"));
  }

  function one(form, selector) { return form.querySelector(selector); }

  function show(el, visible) { if (el) el.hidden = !visible; }

  function setScope(form, scope) {
    var input = one(form, "input[data-bulk-scope]");
    if (input) input.value = scope;
    form.setAttribute("data-bulk-mode", scope);
  }

  function refresh(form) {
    var boxes = items(form);
    var checked = boxes.filter(function (b) { return b.checked; }).length;
    var all = boxes.length > 0 && checked === boxes.length;
    var total = parseInt(form.getAttribute("data-bulk-total") || "0", 10);
    var totalText = form.getAttribute("data-bulk-total-text") || String(total);
    var scope = form.getAttribute("data-bulk-mode") || "ids";
    if (!all && scope === "filter") { scope = "ids"; setScope(form, "ids"); }

    var page = one(form, "input[data-bulk-page]");
    if (page) {
      page.checked = all;
      page.indeterminate = checked > 0 && !all;
    }
    var count = one(form, "[data-bulk-count]");
    if (count) {
      var text = scope === "filter" ? "All " + totalText + " matching alerts selected"
        : checked ? checked + " of " + boxes.length + " on this page selected" : "None selected";
      if (count.textContent !== text) count.textContent = text;
    }
    var banner = one(form, "[data-bulk-banner]");
    show(banner, all && total > boxes.length);
    show(one(form, "[data-bulk-banner-page]"), scope !== "filter");
    show(one(form, "[data-bulk-banner-all]"), scope === "filter");
  }

  function setRange(form, from, to, value) {
    var boxes = items(form);
    var a = boxes.indexOf(from), b = boxes.indexOf(to);
    if (a === -1 || b === -1) return;
    for (var i = Math.min(a, b); i <= Math.max(a, b); i++) boxes[i].checked = value;
  }

  function init(form) {
    var anchor = null;
    var shiftSpace = false;

    // Shift+Space: the browser toggles the box on keyup with a click event that may not
    // carry the modifier, so remember it from the key itself.
    form.addEventListener("keydown", function (ev) {
      if (ev.target.hasAttribute && ev.target.hasAttribute("data-bulk-item") &&
          (ev.key === " " || ev.key === "Spacebar")) shiftSpace = ev.shiftKey;
    });

    form.addEventListener("click", function (ev) {
      var t = ev.target;
      if (t.hasAttribute("data-bulk-item")) {
        if ((ev.shiftKey || shiftSpace) && anchor && anchor !== t && form.contains(anchor)) {
          setRange(form, anchor, t, t.checked);
        }
        shiftSpace = false;
        anchor = t;
        refresh(form);
      } else if (t.hasAttribute("data-bulk-page")) {
        var value = t.checked;
        items(form).forEach(function (b) { b.checked = value; });
        anchor = null;
        refresh(form);
      } else if (t.closest("[data-bulk-select-all]")) {
        setScope(form, "filter");
        refresh(form);
        var clear = one(form, "[data-bulk-clear]");
        if (clear) clear.focus();
      } else if (t.closest("[data-bulk-clear]")) {
        items(form).forEach(function (b) { b.checked = false; });
        setScope(form, "ids");
        anchor = null;
        refresh(form);
        var header = one(form, "input[data-bulk-page]");
        if (header) header.focus();
      }
    });

    // A box changed some other way (e.g. the browser restoring the form on Back).
    form.addEventListener("change", function () { refresh(form); });
    setScope(form, "ids");
    refresh(form);
  }

  function start() {
    document.querySelectorAll("form[data-bulk-form]").forEach(init);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
