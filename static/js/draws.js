// Draw page: follow each queued or running draw (the samples API) until it ends, then show the result.
(function () {
  "use strict";
  var boxes = document.querySelectorAll(".draw-progress");
  Array.prototype.forEach.call(boxes, function (box) {
    var url = box.getAttribute("data-url");
    var meter = box.querySelector(".progress");
    var bar = box.querySelector(".progress > div");
    var label = box.querySelector(".draw-label");
    function tick() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (draw) {
          bar.style.width = draw.progress + "%";
          meter.setAttribute("aria-valuenow", draw.progress);
          label.textContent = draw.status + " — " + draw.progress + "%";
          if (draw.status === "succeeded" || draw.status === "failed") {
            window.location.reload();
          } else {
            setTimeout(tick, 1000);
          }
        })
        .catch(function () { setTimeout(tick, 3000); });
    }
    setTimeout(tick, 500);
  });
})();
