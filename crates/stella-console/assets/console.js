// Stella console: progressive enhancement only. Every page works without
// this script (the list editor's add and remove buttons then go to the
// server and back); it adds confirmations before destructive actions, a
// busy state on slow forms, and list editing in place. No inline handlers
// (the CSP forbids them).
"use strict";

document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  var button = event.submitter || null;
  var attr = function (name) {
    return (button && button.getAttribute(name)) || form.getAttribute(name);
  };
  var question = attr("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
    return;
  }
  var busy = attr("data-busy");
  if (busy) {
    if (button) {
      button.setAttribute("aria-disabled", "true");
      button.textContent = busy;
    }
    var status = document.getElementById(form.getAttribute("data-status") || "");
    if (status) status.textContent = busy;
  }
});

// List editor: renumber the lines (labels, ids, remove buttons) after a change.
function renumber(list) {
  var lines = list.querySelectorAll("li.line");
  lines.forEach(function (li, n) {
    var input = li.querySelector("input");
    var label = li.querySelector("label");
    var remove = li.querySelector("button.remove");
    var base = list.closest("fieldset").id;
    input.id = base + "-" + n;
    label.setAttribute("for", input.id);
    label.textContent = "Line " + (n + 1);
    remove.setAttribute("aria-label", "Remove line " + (n + 1));
    var field = remove.value.split(":")[1];
    remove.value = "remove:" + field + ":" + n;
  });
}

document.addEventListener("click", function (event) {
  var button = event.target instanceof Element ? event.target.closest("button") : null;
  if (!button || !button.closest("fieldset.list-editor")) return;
  var fieldset = button.closest("fieldset.list-editor");
  var list = fieldset.querySelector("ol.lines");
  var value = button.value || "";
  if (value.indexOf("remove:") === 0) {
    event.preventDefault();
    var li = button.closest("li.line");
    var next = li.nextElementSibling || li.previousElementSibling;
    if (list.querySelectorAll("li.line").length > 1) {
      li.remove();
    } else {
      li.querySelector("input").value = "";
      li.querySelectorAll(".field-error").forEach(function (e) { e.remove(); });
      next = li;
    }
    renumber(list);
    var target = next ? next.querySelector("input") : fieldset.querySelector("button[value^='add:']");
    if (target) target.focus();
  } else if (value.indexOf("add:") === 0) {
    event.preventDefault();
    var last = list.querySelector("li.line:last-child");
    var copy = last.cloneNode(true);
    copy.querySelectorAll(".field-error").forEach(function (e) { e.remove(); });
    var input = copy.querySelector("input");
    input.value = "";
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
    list.appendChild(copy);
    renumber(list);
    input.focus();
  }
});

// Export page: follow the job live. The console relays the API's
// server-sent events (EventSource cannot send the session's token, the
// relay adds it). Progress events update the <progress> element and the
// status text in place; at the final event the result section is fetched
// from the page itself and swapped in, so the page never reloads. Without
// EventSource the status is polled every second the same way.
(function () {
  var live = document.getElementById("export-live");
  if (!live || !live.getAttribute("data-events")) return;
  var status = document.getElementById("export-status");
  var bar = document.getElementById("export-progress");
  var text = document.getElementById("export-progress-text");
  var show = function (job) {
    if (!job || !job.status) return;
    status.textContent = job.status;
    status.className = "job-" + job.status;
    var p = job.progress || {};
    var total = Math.max(p.bytesTotal || 0, 1);
    bar.max = total;
    bar.value = job.status === "succeeded" ? total : Math.min(p.bytesDone || 0, total);
    text.textContent = (p.entriesDone || 0) + " of " + (p.entriesTotal || 0) + " entries, " +
      (p.bytesDone || 0) + " of " + (p.bytesTotal || 0) + " bytes";
  };
  var finish = function () {
    fetch(live.getAttribute("data-page"), { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("export-live");
        if (!fresh) return;
        ["export-status", "export-finished", "export-progress", "export-progress-text", "export-result"].forEach(function (id) {
          var now = document.getElementById(id);
          var next = doc.getElementById(id);
          if (now && next) now.replaceWith(document.importNode(next, true));
        });
        live.removeAttribute("data-events");
        live.setAttribute("data-finished", "true");
      });
  };
  var parse = function (data) {
    try { return JSON.parse(data); } catch (e) { return null; }
  };
  if (window.EventSource) {
    var source = new EventSource(live.getAttribute("data-events"));
    source.addEventListener("progress", function (e) { show(parse(e.data)); });
    ["completed", "failed", "deleted"].forEach(function (name) {
      source.addEventListener(name, function (e) {
        source.close();
        show(parse(e.data));
        finish();
      });
    });
    return;
  }
  var poll = function () {
    fetch(live.getAttribute("data-page"), { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var s = doc.getElementById("export-status");
        var st = s ? s.textContent : "";
        if (st === "queued" || st === "running") {
          status.textContent = st;
          setTimeout(poll, 1000);
        } else {
          finish();
        }
      });
  };
  setTimeout(poll, 1000);
})();
