/* Device page metrics tab: draws agents' metric series with uPlot and fills the table
   alternative. Loaded with the tab (htmx swaps scripts in and runs them). */
(function () {
  "use strict";
  var box = document.getElementById("metric-chart");
  if (!box || typeof uPlot === "undefined") return;
  var pick = document.getElementById("metric-pick");
  var hours = document.getElementById("metric-hours");
  var table = document.querySelector("#metric-table tbody");
  var empty = document.getElementById("metric-empty");
  var chart = null;

  function draw() {
    var url = box.dataset.url + "?metric=" + encodeURIComponent(pick.value) +
      "&hours=" + encodeURIComponent(hours.value);
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); })
      .then(function (data) {
        var xs = data.points.map(function (p) { return p[0]; });
        var ys = data.points.map(function (p) { return p[1]; });
        if (chart) { chart.destroy(); chart = null; }
        empty.hidden = xs.length > 0;
        table.textContent = "";
        data.points.slice(-200).forEach(function (p) {
          var tr = document.createElement("tr");
          var t = document.createElement("td");
          t.textContent = new Date(p[0] * 1000).toLocaleString();
          var v = document.createElement("td");
          v.textContent = p[1];
          tr.appendChild(t); tr.appendChild(v); table.appendChild(tr);
        });
        if (!xs.length) return;
        chart = new uPlot({
          width: Math.max(box.clientWidth, 300), height: 240,
          series: [{}, {label: data.metric, stroke: "#2563eb", width: 1.5}],
          axes: [{}, {}],
        }, [xs, ys], box);
      });
  }
  pick.addEventListener("change", draw);
  hours.addEventListener("change", draw);
  draw();
})();
