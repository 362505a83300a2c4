// userstream UI: the few things pages do with JavaScript. Every page works
// without it; this file only makes them live.
"use strict";

// htmx requests carry the session's CSRF token, as forms do in a field.
document.addEventListener("htmx:configRequest", function (e) {
  var m = document.querySelector('meta[name="csrf-token"]');
  if (m && m.content) { e.detail.headers["X-CSRF-Token"] = m.content; }
});

// The overview follows the pipeline through server-sent events.
function fmt(n) { return Math.round(n).toString(); }
function ms(n) { return n >= 0 ? fmt(n) + " ms" : "\u2013"; }
function setText(id, text) {
  var el = document.getElementById(id);
  if (el) { el.textContent = text; }
}
function showErrors(list) {
  var ul = document.getElementById("errors");
  if (!ul) { return; }
  ul.textContent = "";
  if (!list || list.length === 0) {
    var none = document.createElement("li");
    none.className = "none";
    none.textContent = "none";
    ul.appendChild(none);
    return;
  }
  list.forEach(function (e) {
    var li = document.createElement("li");
    var lvl = document.createElement("span");
    lvl.className = "lvl-" + e.level;
    lvl.textContent = e.level;
    li.appendChild(lvl);
    li.appendChild(document.createTextNode(" " + e.at.replace("T", " ").slice(0, 19) + " " + e.message));
    ul.appendChild(li);
  });
}
document.addEventListener("DOMContentLoaded", function () {
  var ov = document.getElementById("overview");
  if (!ov || !window.EventSource) { return; }
  var es = new EventSource(ov.getAttribute("data-events"));
  // The series' new points go to charts.js.
  es.addEventListener("series", function (ev) {
    document.dispatchEvent(new CustomEvent("userstream:series", {detail: JSON.parse(ev.data)}));
  });
  es.addEventListener("snapshot", function (ev) {
    var s = JSON.parse(ev.data);
    setText("produced-rate", fmt(s.produced_per_second));
    setText("in-topic", s.in_topic);
    setText("lag", s.lag);
    setText("dead", s.dead_lettered);
    setText("workers", s.workers.length);
    setText("group-state", s.group_state);
    setText("p50", ms(s.latency_p50_ms));
    setText("p99", ms(s.latency_p99_ms));
    setText("stored", s.stored);
    setText("stored-rate", fmt(s.stored_per_second));
    setText("at", s.at.replace("T", " ").slice(0, 19));
    showErrors(s.errors);
  });
});
