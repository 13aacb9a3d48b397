/* Network check and heartbeat pages: the copy button of a heartbeat URL, and the chart of
   a network check's last runs (uPlot; the table on the page is its text alternative). */
(function () {
  "use strict";
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var field = document.getElementById(button.dataset.copy);
      var status = document.getElementById("hb-copied");
      var settled = false;
      var done = function () {
        settled = true; if (status) status.textContent = "Copied to the clipboard.";
      };
      var manual = function () {
        settled = true; field.select();
        if (status) status.textContent = "Press Ctrl+C to copy.";
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, manual);
        // A browser that waits on a permission prompt neither resolves nor rejects: after a
        // second, select the URL and say how to copy it, so the button always answers.
        setTimeout(function () { if (!settled) manual(); }, 1000);
      } else {
        field.select();
        try { document.execCommand("copy"); done(); } catch (e) { /* selected for the user */ }
      }
    });
  });
  var box = document.getElementById("poll-chart");
  var data = document.getElementById("poll-chart-data");
  if (box && data && typeof uPlot !== "undefined") {
    var points = JSON.parse(data.textContent);
    if (points.length) {
      new uPlot({
        width: Math.max(box.clientWidth, 300), height: 220,
        series: [{}, {label: box.dataset.unit, stroke: "#2563eb", width: 1.5}],
        axes: [{}, {}],
      }, [points.map(function (p) { return p[0]; }), points.map(function (p) { return p[1]; })],
      box);
    }
  }
})();
