/* Ticket page shortcuts (single keys, off when the user turned shortcuts off in "?"):
 * r = write a public reply, n = write an internal note, s = status, a = assignee,
 * m = merge. Ctrl+Enter sends the composer (global, app.js). Every one has a visible control. */
(function () {
  "use strict";
  function enabled() {
    try { return window.localStorage.getItem("wk.shortcuts") !== "off"; } catch (e) { return true; }
  }
  function typing(el) {
    var tag = el && el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (el && el.isContentEditable);
  }
  function visibility(value) {
    var radio = document.querySelector('#composer input[name="visibility"][value="' + value + '"]');
    if (radio) { radio.checked = true; radio.dispatchEvent(new Event("change", { bubbles: true })); }
    var body = document.getElementById("reply-body");
    if (body) body.focus();
  }
  function focus(id) { var el = document.getElementById(id); if (el) el.focus(); }
  document.addEventListener("change", function (ev) {
    var t = ev.target;
    if (t.name === "visibility" && t.closest("#composer")) {
      document.getElementById("composer").classList.toggle("is-note", t.value === "note" && t.checked);
    }
    if (t.id === "canned" && t.value) {
      var body = document.getElementById("reply-body");
      var text = t.options[t.selectedIndex].getAttribute("data-body") || "";
      body.value = (body.value ? body.value + "\n\n" : "") + text;
      t.value = "";
      body.focus();
    }
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target) || !enabled()) return;
    var dlg = document.getElementById("shortcut-help");
    if (dlg && dlg.open) return;
    var action = { r: function () { visibility("public"); }, n: function () { visibility("note"); },
                   s: function () { focus("t-status"); }, a: function () { focus("t-assignee"); },
                   m: function () { focus("merge-target"); } }[ev.key];
    if (action) { ev.preventDefault(); action(); }
  });
})();
