// Poll a certification job and show its stage and progress until it ends.
(function () {
  "use strict";
  var box = document.getElementById("job-progress");
  if (!box) return;
  var url = box.getAttribute("data-url");
  var bar = box.querySelector(".progress > div");
  var label = box.querySelector(".job-label");
  function tick() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (job) {
        bar.style.width = job.progress + "%";
        label.textContent = job.error ? job.error : job.stage + " — " + job.progress + "%";
        if (job.done) { window.location.reload(); } else { setTimeout(tick, 1000); }
      })
      .catch(function () { setTimeout(tick, 3000); });
  }
  tick();
})();
