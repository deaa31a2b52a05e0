// Generator panel: show the fields of the chosen way in (fit on the platform, or upload a synthesizer).
(function () {
  "use strict";
  var form = document.getElementById("generator-form");
  if (!form) return;
  function show() {
    var mode = form.querySelector("input[name=mode]:checked").value;
    form.querySelectorAll("[data-mode]").forEach(function (part) {
      part.hidden = part.getAttribute("data-mode") !== mode;
    });
  }
  form.querySelectorAll("input[name=mode]").forEach(function (radio) {
    radio.addEventListener("change", show);
  });
  show();
})();
