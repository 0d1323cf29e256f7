// Stella console: progressive enhancement only. Every page works without
// this script; it adds confirmations before destructive actions and a busy
// state on slow forms. No inline handlers (the CSP forbids them).
"use strict";

document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
    return;
  }
  var busy = form.getAttribute("data-busy");
  if (busy) {
    var button = form.querySelector("button[type=submit]");
    if (button) {
      button.setAttribute("aria-disabled", "true");
      button.textContent = busy;
    }
    var status = document.getElementById(form.getAttribute("data-status") || "");
    if (status) status.textContent = busy;
  }
});
