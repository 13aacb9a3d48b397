/* Network check and heartbeat pages: the copy button of a heartbeat URL, and the chart of
   a network check's history (uPlot; the table on the page is its text alternative). */
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
    // Points are [ts, avg, min, max]: one per run, or per bucket of runs (then min and max
    // are drawn as thin lines around the average).
    var points = JSON.parse(data.textContent);
    if (points.length) {
      var column = function (i) { return points.map(function (p) { return p[i]; }); };
      var series = [{}, {label: box.dataset.unit, stroke: "#2563eb", width: 1.5}];
      var columns = [column(0), column(1)];
      if (box.dataset.bands) {
        series.push({label: "min", stroke: "#93c5fd", width: 1},
                    {label: "max", stroke: "#93c5fd", width: 1});
        columns.push(column(2), column(3));
      }
      new uPlot({width: Math.max(box.clientWidth, 300), height: 220, series: series,
                 axes: [{}, {}]}, columns, box);
    }
  }
})();
