// userstream UI: the charts of the series the process keeps
// (/api/ui/series), drawn with uPlot (vendored: uplot.min.js, v1.6.32,
// MIT, uplot.LICENSE). Each chart's table of its newest points is on the
// page already; this file draws the chart and keeps both moving: on the
// overview from its event stream ("series" events), elsewhere by asking
// the section's data-src for the points after the last one it has.
"use strict";

var chartColors = ["#0b5cad", "#1a7f37", "#bc4c00", "#8250df", "#cf222e"];
var chartRows = 10;

// Chart is one figure.chart: its lines (the table's th[data-key]), the
// points by time and the uPlot drawing them.
function Chart(fig) {
  this.fig = fig;
  this.max = Number(fig.getAttribute("data-max")) || 720;
  this.keys = [];
  this.labels = [];
  var ths = fig.querySelectorAll("table.numbers th[data-key]");
  for (var i = 0; i < ths.length; i++) {
    this.keys.push(ths[i].getAttribute("data-key"));
    this.labels.push(ths[i].textContent);
  }
  this.rows = new Map(); // unix ms -> [value per line]
  this.plot = null;
}

// add takes lines of the series JSON; it reports whether any was its own.
Chart.prototype.add = function (lines) {
  var mine = false;
  for (var i = 0; i < lines.length; i++) {
    var l = lines[i];
    var idx = this.keys.indexOf(l.name + "|" + (l.group || "") + "|" + (l.topic || ""));
    if (idx < 0) { continue; }
    mine = true;
    for (var j = 0; j < l.points.length; j++) {
      var at = l.points[j][0];
      var row = this.rows.get(at);
      if (!row) {
        row = this.keys.map(function () { return null; });
        this.rows.set(at, row);
      }
      row[idx] = l.points[j][1];
    }
  }
  if (!mine) { return false; }
  var times = Array.from(this.rows.keys()).sort(function (a, b) { return a - b; });
  while (times.length > this.max) { this.rows.delete(times.shift()); }
  this.draw(times);
  return true;
};

Chart.prototype.draw = function (times) {
  var self = this;
  var data = [times.map(function (t) { return t / 1000; })];
  this.keys.forEach(function (_, i) {
    data.push(times.map(function (t) { return self.rows.get(t)[i]; }));
  });
  var box = this.fig.querySelector(".plot");
  if (window.uPlot && box) {
    if (!this.plot) {
      var series = [{}];
      this.labels.forEach(function (label, i) {
        series.push({label: label, stroke: chartColors[i % chartColors.length], width: 2, spanGaps: false});
      });
      this.plot = new window.uPlot({
        width: Math.max(box.clientWidth, 280), height: 200, series: series,
        scales: {x: {time: true}}, legend: {live: false},
        axes: [{}, {label: this.fig.getAttribute("data-unit") || "", size: 60}],
      }, data, box);
    } else {
      this.plot.setData(data);
    }
  }
  this.fig.setAttribute("data-points", String(times.length));
  this.table(times);
};

// table shows the newest points, newest first, as text.
Chart.prototype.table = function (times) {
  var body = this.fig.querySelector("table.numbers tbody");
  if (!body) { return; }
  body.textContent = "";
  for (var i = times.length - 1; i >= 0 && times.length - i <= chartRows; i--) {
    var tr = document.createElement("tr");
    var td = document.createElement("td");
    td.textContent = new Date(times[i]).toISOString().replace("T", " ").slice(0, 19);
    tr.appendChild(td);
    this.rows.get(times[i]).forEach(function (v) {
      var c = document.createElement("td");
      c.textContent = chartNumber(v);
      tr.appendChild(c);
    });
    body.appendChild(tr);
  }
};

// chartNumber is number() of charts.go: an en dash when unknown, whole
// numbers from 10 up, one decimal below.
function chartNumber(v) {
  if (v === null || v === undefined || !isFinite(v)) { return "\u2013"; }
  if (Math.abs(v) >= 10 || v === Math.trunc(v)) { return String(Math.round(v)); }
  return v.toFixed(1);
}

function lastTime(charts) {
  var last = 0;
  charts.forEach(function (c) { c.rows.forEach(function (_, at) { last = Math.max(last, at); }); });
  return last;
}

document.addEventListener("DOMContentLoaded", function () {
  var section = document.querySelector("section.charts");
  if (!section) { return; }
  var charts = Array.prototype.map.call(section.querySelectorAll("figure.chart"), function (f) { return new Chart(f); });
  var feed = function (lines) { charts.forEach(function (c) { c.add(lines); }); };
  window.addEventListener("resize", function () {
    charts.forEach(function (c) {
      var box = c.fig.querySelector(".plot");
      if (c.plot && box) { c.plot.setSize({width: Math.max(box.clientWidth, 280), height: 200}); }
    });
  });
  var src = section.getAttribute("data-src");
  if (!src) {
    // The overview: app.js's event stream hands the series events over.
    document.addEventListener("userstream:series", function (e) { feed(e.detail); });
    return;
  }
  var every = Number(charts.length ? charts[0].fig.getAttribute("data-every") : 5000) || 5000;
  var poll = function () {
    var u = new URL(src, location.href);
    u.searchParams.set("since", String(lastTime(charts)));
    fetch(u.toString(), {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(feed)
      .catch(function () {})
      .finally(function () { setTimeout(poll, every); });
  };
  poll();
});
