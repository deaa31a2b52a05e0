// "Print / save as PDF" buttons: the browser's own print dialog, with the print stylesheet in synthex.css.
(function () {
  "use strict";
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
})();
