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
