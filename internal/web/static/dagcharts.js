// userstream UI: the DAG page's chart of run durations, drawn with uPlot
// (vendored, see charts.js) from the table of runs beside it: a grey line
// through every run and a point a run, coloured by its state.
"use strict";

var runStates = [
  ["success", "#1a7f37"], ["failed", "#cf222e"], ["running", "#0969da"], ["queued", "#9a6700"],
];

document.addEventListener("DOMContentLoaded", function () {
  var fig = document.querySelector("figure.runchart");
  var box = fig && fig.querySelector(".plot");
  if (!box || !window.uPlot) { return; }
  var rows = Array.prototype.filter.call(fig.querySelectorAll("tbody tr[data-at]"), function (tr) {
    return tr.hasAttribute("data-s");
  });
  if (!rows.length) { return; }
  var xs = [], all = [];
  var byState = runStates.map(function () { return []; });
  rows.forEach(function (tr) {
    var s = Number(tr.getAttribute("data-s"));
    var state = tr.getAttribute("data-state");
    xs.push(Number(tr.getAttribute("data-at")) / 1000);
    all.push(s);
    runStates.forEach(function (st, i) { byState[i].push(st[0] === state ? s : null); });
  });
  var series = [{}, {label: "duration", stroke: "#8c959f", width: 1, points: {show: false}}];
  runStates.forEach(function (st) {
    series.push({label: st[0], stroke: st[1], fill: st[1], paths: function () { return null; },
      points: {show: true, size: 9, fill: st[1], stroke: st[1]}});
  });
  new window.uPlot({
    width: Math.max(box.clientWidth, 280), height: 220, series: series,
    scales: {x: {time: true}}, legend: {live: false},
    axes: [{}, {label: "seconds", size: 60}],
  }, [xs, all].concat(byState), box);
  fig.setAttribute("data-points", String(xs.length));
});
