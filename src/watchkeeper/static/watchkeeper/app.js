/*
 * Watchkeeper UI shell behaviour. Progressive enhancement only: every action here also has
 * a link, button or form that works without JavaScript.
 *
 * - "/" and Ctrl/Cmd+K focus the global search; Enter submits it to the search page.
 * - ArrowDown from the search box moves into the type-ahead results; Escape closes them.
 * - "?" opens the shortcut help; single-key shortcuts can be switched off there
 *   (localStorage "wk.shortcuts" = "off"). Ctrl/Cmd+K and Ctrl+Enter always work.
 * - "g d" / "g c" go to My work / Clients; "j" / "k" move through table rows.
 * - Menus (<details class="menu">) close on outside click and Escape.
 * - The side nav collapses behind #nav-toggle on narrow screens.
 * - [data-toggle-density] switches between dense and comfortable rows (localStorage).
 * - [data-autosubmit] on a form submits it when a select/checkbox inside changes.
 * - [data-confirm-match] on an input enables the form's [data-confirm-target] button only
 *   when the typed text equals the attribute's value.
 * - [data-confirm] on a form asks the attribute's question before it is submitted.
 * - [data-current-on-click] links mark themselves aria-current="page" among their siblings
 *   (tabs whose panel htmx swaps in).
 * - The search box asks for type-ahead results on focus when it already holds 2+ characters
 *   (event "wk:search-focus"; htmx runs with eval off, so no trigger filter expressions).
 * No inline script or handler anywhere: the Content-Security-Policy allows only our files.
 */
(function () {
  "use strict";

  var SHORTCUTS_KEY = "wk.shortcuts";
  var DENSITY_KEY = "wk.density";

  function store(key, value) {
    try {
      if (value === undefined) return window.localStorage.getItem(key);
      window.localStorage.setItem(key, value);
    } catch (e) { /* private mode: behave as default */ }
    return null;
  }

  function shortcutsEnabled() { return store(SHORTCUTS_KEY) !== "off"; }

  function isTyping(el) {
    if (!el) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }

  function searchInput() { return document.getElementById("global-search"); }
  function searchPopover() { return document.getElementById("search-popover"); }

  function focusSearch() {
    var input = searchInput();
    if (input) { input.focus(); input.select(); }
  }

  function closeSearch() {
    var pop = searchPopover(), input = searchInput();
    if (pop) pop.innerHTML = "";
    if (input) input.setAttribute("aria-expanded", "false");
  }

  function openHelp() {
    var dlg = document.getElementById("shortcut-help");
    if (dlg && typeof dlg.showModal === "function" && !dlg.open) dlg.showModal();
  }

  function closeMenus(except) {
    document.querySelectorAll("details.menu[open]").forEach(function (d) {
      if (d !== except) d.removeAttribute("open");
    });
  }

  function tableRows() {
    var main = document.getElementById("main");
    if (!main) return [];
    return Array.prototype.slice.call(main.querySelectorAll(".table tbody tr"))
      .filter(function (tr) { return tr.querySelector("a[href]"); });
  }

  function moveRow(step) {
    var rows = tableRows();
    if (!rows.length) return;
    var current = rows.findIndex(function (tr) { return tr.contains(document.activeElement); });
    var next = current === -1 ? (step > 0 ? 0 : rows.length - 1)
      : Math.min(rows.length - 1, Math.max(0, current + step));
    rows[next].querySelector("a[href]").focus();
  }

  var pendingG = false, pendingTimer = null;

  document.addEventListener("keydown", function (ev) {
    // Ctrl/Cmd+K: always on (a chord, not a single key).
    if ((ev.ctrlKey || ev.metaKey) && !ev.altKey && (ev.key === "k" || ev.key === "K")) {
      ev.preventDefault();
      focusSearch();
      return;
    }
    // Ctrl/Cmd+Enter submits the form being typed in.
    if ((ev.ctrlKey || ev.metaKey) && ev.key === "Enter" && isTyping(ev.target) && ev.target.form) {
      ev.preventDefault();
      if (typeof ev.target.form.requestSubmit === "function") ev.target.form.requestSubmit();
      else ev.target.form.submit();
      return;
    }
    if (ev.key === "Escape") {
      if (searchPopover() && searchPopover().innerHTML.trim()) { closeSearch(); return; }
      var open = document.querySelector("details.menu[open]");
      if (open) {
        open.removeAttribute("open");
        var summary = open.querySelector("summary");
        if (summary) summary.focus();
      }
      if (document.body.classList.contains("nav-open")) toggleNav(false);
      return;
    }
    if (ev.target === searchInput() && ev.key === "ArrowDown") {
      var first = searchPopover() && searchPopover().querySelector("a[href]");
      if (first) { ev.preventDefault(); first.focus(); }
      return;
    }
    if (searchPopover() && searchPopover().contains(ev.target) &&
        (ev.key === "ArrowDown" || ev.key === "ArrowUp")) {
      var links = Array.prototype.slice.call(searchPopover().querySelectorAll("a[href]"));
      var i = links.indexOf(ev.target) + (ev.key === "ArrowDown" ? 1 : -1);
      ev.preventDefault();
      if (i < 0) searchInput().focus();
      else if (i < links.length) links[i].focus();
      return;
    }

    if (ev.ctrlKey || ev.metaKey || ev.altKey || isTyping(ev.target) || !shortcutsEnabled()) return;
    var dlg = document.getElementById("shortcut-help");
    if (dlg && dlg.open) return;

    if (pendingG) {
      pendingG = false;
      clearTimeout(pendingTimer);
      var target = { d: "nav-dashboard", c: "nav-clients" }[ev.key];
      var link = target && document.getElementById(target);
      if (link) { ev.preventDefault(); window.location.href = link.href; }
      return;
    }
    switch (ev.key) {
      case "/": ev.preventDefault(); focusSearch(); break;
      case "?": ev.preventDefault(); openHelp(); break;
      case "g":
        pendingG = true;
        pendingTimer = setTimeout(function () { pendingG = false; }, 1200);
        break;
      case "j": moveRow(1); break;
      case "k": moveRow(-1); break;
      default: break;
    }
  });

  function toggleNav(open) {
    var btn = document.getElementById("nav-toggle");
    document.body.classList.toggle("nav-open", open);
    if (btn) btn.setAttribute("aria-expanded", open ? "true" : "false");
  }

  document.addEventListener("click", function (ev) {
    var t = ev.target;
    var inMenu = t.closest && t.closest("details.menu");
    closeMenus(inMenu);
    var form = document.getElementById("global-search-form");
    if (form && !form.contains(t)) closeSearch();
    if (t.closest && t.closest("#nav-toggle")) {
      toggleNav(!document.body.classList.contains("nav-open"));
    } else if (document.body.classList.contains("nav-open") && !(t.closest && t.closest("#sidenav"))) {
      toggleNav(false);
    }
    if (t.closest && t.closest("#shortcut-help-open")) openHelp();
    var density = t.closest && t.closest("[data-toggle-density]");
    if (density) {
      var comfy = !document.body.classList.contains("comfortable");
      document.body.classList.toggle("comfortable", comfy);
      store(DENSITY_KEY, comfy ? "comfortable" : "dense");
      density.textContent = comfy ? "Dense rows" : "Comfortable rows";
    }
  });

  document.addEventListener("change", function (ev) {
    var t = ev.target;
    if (t.id === "shortcuts-enabled") store(SHORTCUTS_KEY, t.checked ? "on" : "off");
    var form = t.form;
    if (form && form.hasAttribute("data-autosubmit") && (t.tagName === "SELECT" || t.type === "checkbox")) {
      if (typeof form.requestSubmit === "function") form.requestSubmit(); else form.submit();
    }
  });

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) ev.preventDefault();
  });

  document.addEventListener("click", function (ev) {
    var link = ev.target.closest && ev.target.closest("[data-current-on-click]");
    if (!link || !link.parentNode) return;
    link.parentNode.querySelectorAll("[data-current-on-click]").forEach(function (a) {
      a.removeAttribute("aria-current");
    });
    link.setAttribute("aria-current", "page");
  });

  document.addEventListener("focusin", function (ev) {
    var t = ev.target;
    if (t && t.id === "global-search" && t.value.length > 1 && window.htmx) {
      window.htmx.trigger(t, "wk:search-focus");
    }
  });

  document.addEventListener("input", function (ev) {
    var t = ev.target;
    if (t.hasAttribute && t.hasAttribute("data-confirm-match") && t.form) {
      var button = t.form.querySelector("[data-confirm-target]");
      if (button) button.disabled = t.value.trim() !== t.getAttribute("data-confirm-match");
    }
  });

  // Type-ahead results: reflect the popup state for assistive technology.
  document.addEventListener("htmx:afterSwap", function (ev) {
    if (ev.target && ev.target.id === "search-popover") {
      var input = searchInput();
      if (input) input.setAttribute("aria-expanded", ev.target.innerHTML.trim() ? "true" : "false");
    }
  });

  function init() {
    if (store(DENSITY_KEY) === "comfortable") {
      document.body.classList.add("comfortable");
      document.querySelectorAll("[data-toggle-density]").forEach(function (b) { b.textContent = "Dense rows"; });
    }
    var box = document.getElementById("shortcuts-enabled");
    if (box) box.checked = shortcutsEnabled();
    document.querySelectorAll("[data-confirm-match]").forEach(function (input) {
      var button = input.form && input.form.querySelector("[data-confirm-target]");
      if (button) button.disabled = input.value.trim() !== input.getAttribute("data-confirm-match");
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
