// The ATM screen's keyboard and idle warning (a file, not an inline script: the CSP stays). Without it every
// screen still works by touch or Enter, and the server ends an idle session on the next touch.
(function () {
  "use strict";
  var body = document.body;
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      var cancel = document.querySelector("form[data-key=Escape]");
      if (cancel) { event.preventDefault(); cancel.submit(); }
    } else if (event.key === "Backspace" && document.activeElement && document.activeElement.type === "password") {
      event.preventDefault();
      document.activeElement.value = ""; // Clear, as on an ATM's keypad
    }
  });
  document.querySelectorAll(".keypad").forEach(function (pad) {
    var field = document.getElementById(pad.dataset.for);
    pad.hidden = false;
    pad.addEventListener("click", function (event) {
      var key = event.target.dataset && event.target.dataset.key;
      if (!key || !field) return;
      if (key === "Clear") field.value = "";
      else if (field.value.length < (field.maxLength > 0 ? field.maxLength : 6)) field.value += key;
      field.focus();
    });
  });
  var idle = parseInt(body.dataset.idle || "0", 10);
  if (idle > 0) {
    var warning = document.querySelector(".idle-warning");
    var warnAt, endAt;
    var restart = function () {
      clearTimeout(warnAt); clearTimeout(endAt);
      if (warning) warning.hidden = true;
      warnAt = setTimeout(function () {
        if (warning) { warning.hidden = false; warning.querySelector("button").focus(); }
      }, Math.max(0, idle - 10) * 1000);
      endAt = setTimeout(function () { window.location.assign(window.location.pathname); }, (idle + 1) * 1000);
    };
    ["keydown", "pointerdown", "input"].forEach(function (name) { document.addEventListener(name, restart); });
    restart();
  }
  document.querySelectorAll("button.print").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); }); // the receipt, at 80 mm (print CSS)
  });
  // focus where the customer acts next: the field or button marked autofocus, else the heading (read out first)
  var first = document.querySelector("[autofocus]") || document.querySelector("h1");
  if (first) first.focus({ preventScroll: true });
})();
