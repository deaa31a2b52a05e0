// Upload a version with a real progress bar: XMLHttpRequest reports bytes sent as they leave the browser.
(function () {
  "use strict";
  var form = document.getElementById("version-upload-form");
  if (!form) return;
  var bar = document.getElementById("upload-progress-bar");
  var label = document.getElementById("upload-progress-label");
  var errorBox = document.getElementById("upload-error");
  var button = form.querySelector("button[type=submit]");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    errorBox.hidden = true;
    button.disabled = true;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      var pct = Math.round((e.loaded / e.total) * 100);
      bar.style.width = pct + "%";
      bar.parentElement.setAttribute("aria-valuenow", String(pct));
      label.textContent = pct < 100 ? "Uploading… " + pct + "%" : "Uploaded. Checking the files…";
    });
    xhr.addEventListener("load", function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = { detail: "The server answered " + xhr.status + "." }; }
      if (xhr.status === 201 && body.redirect) { window.location.assign(body.redirect); return; }
      errorBox.textContent = body.detail || "The upload failed.";
      errorBox.hidden = false;
      label.textContent = "";
      bar.style.width = "0";
      button.disabled = false;
    });
    xhr.addEventListener("error", function () {
      errorBox.textContent = "The connection broke during the upload; nothing was saved. Please try again.";
      errorBox.hidden = false;
      button.disabled = false;
    });
    xhr.send(new FormData(form));
  });
})();
