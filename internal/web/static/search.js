// userstream UI: a topic search streamed as it runs (server-sent events),
// with its progress and a Cancel that closes the stream, which stops the
// scan on the server. Without this script the form runs the search as a
// plain GET and the page shows its end.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("search-form");
  if (!form || !window.EventSource) { return; }
  var cancel = document.getElementById("search-cancel");
  var start = document.getElementById("search-start");
  var results = document.querySelector("#search-results tbody");
  var parts = document.querySelector("#search-partitions tbody");
  var es = null;
  var last = null;

  function set(id, text) { document.getElementById(id).textContent = text; }
  function cell(tr, text) {
    var td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }
  function progress(e) {
    last = e;
    set("search-scanned", e.scanned);
    set("search-matched", e.matched);
    set("search-elapsed", e.elapsed_ms + " ms");
    if (!e.partitions) { return; }
    parts.textContent = "";
    e.partitions.forEach(function (p) {
      var tr = document.createElement("tr");
      [p.partition, p.start, p.end, p.next].forEach(function (v) { cell(tr, v); });
      parts.appendChild(tr);
    });
  }
  function match(e) {
    var m = e.message;
    set("search-scanned", e.scanned);
    set("search-matched", e.matched);
    var tr = document.createElement("tr");
    cell(tr, m.partition);
    var td = document.createElement("td");
    var a = document.createElement("a");
    a.href = form.getAttribute("data-events").replace(/\/search\/events$/, "/messages") +
      "?mode=offset&partition=" + m.partition + "&offset=" + m.offset + "&limit=1";
    a.textContent = m.offset;
    td.appendChild(a);
    tr.appendChild(td);
    cell(tr, m.timestamp.replace("T", " ").slice(0, 19));
    cell(tr, m.key).className = "key";
    var v = cell(tr, "");
    var fmt = document.createElement("span");
    fmt.className = "format";
    fmt.textContent = m.value.format + (m.value.schema_id ? " \u00b7 schema id " + m.value.schema_id : "");
    var pre = document.createElement("pre");
    pre.className = "value";
    pre.textContent = m.value.text;
    v.appendChild(fmt);
    v.appendChild(pre);
    var dl = document.createElement("dl");
    dl.className = "headers";
    Object.keys(m.headers || {}).forEach(function (k) {
      var dt = document.createElement("dt");
      dt.textContent = k;
      var dd = document.createElement("dd");
      dd.textContent = m.headers[k];
      dl.appendChild(dt);
      dl.appendChild(dd);
    });
    cell(tr, "").appendChild(dl);
    results.appendChild(tr);
  }
  function finish(summary) {
    if (es) { es.close(); es = null; }
    set("search-summary", summary);
    cancel.disabled = true;
    start.disabled = false;
  }
  function showError(msg) {
    var p = document.getElementById("search-error");
    if (!p) {
      p = document.createElement("p");
      p.id = "search-error";
      p.className = "error";
      p.setAttribute("role", "alert");
      form.after(p);
    }
    p.textContent = msg;
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (es) { es.close(); }
    var qs = new URLSearchParams(new FormData(form)).toString();
    history.replaceState(null, "", "?" + qs);
    var url = form.getAttribute("data-events") + "?" + qs;
    results.textContent = "";
    parts.textContent = "";
    last = null;
    var old = document.getElementById("search-error");
    if (old) { old.remove(); }
    set("search-summary", "searching\u2026");
    cancel.disabled = false;
    start.disabled = true;
    var started = false;
    es = new EventSource(url);
    es.addEventListener("progress", function (m) { started = true; progress(JSON.parse(m.data)); });
    es.addEventListener("match", function (m) { started = true; match(JSON.parse(m.data)); });
    es.addEventListener("done", function (m) {
      var e = JSON.parse(m.data);
      progress(e);
      finish(e.summary);
    });
    es.addEventListener("error", function (m) {
      if (m.data) { // the server's own error event
        finish("");
        showError(JSON.parse(m.data).error);
        return;
      }
      // The stream failed: a refused query answers 400 with why.
      finish(started ? "the search stopped: the connection was lost" : "");
      if (!started) {
        fetch(url).then(function (r) { return r.json(); })
          .then(function (j) { showError(j.error || "the search could not start"); })
          .catch(function () { showError("the search could not start"); });
      }
    });
  });

  cancel.addEventListener("click", function () {
    var what = last ? last.scanned + " scanned, " + last.matched + " matched in " + last.elapsed_ms + " ms" : "";
    finish("cancelled" + (what ? ": " + what : ""));
  });
});
