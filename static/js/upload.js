// Upload a version with a real progress bar. Each file goes through a resumable upload session of the REST
// API, sent in chunks (the bar counts bytes as they leave the browser): to this server, or, when the files
// live on S3 (the session's transport is "s3"), straight to the object store with the presigned part URLs
// the session hands out (no cookie, no CSRF header: the URL is the permission); a worker then checks each file
// (parse, schema, statistics: its progress shows under the bar) and the draft version is made from the
// upload ids. Without JavaScript the form posts the files in one request instead.
(function () {
  "use strict";
  var form = document.getElementById("version-upload-form");
  if (!form) return;
  var bar = document.getElementById("upload-progress-bar");
  var label = document.getElementById("upload-progress-label");
  var errorBox = document.getElementById("upload-error");
  var button = form.querySelector("button[type=submit]");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var uploadsUrl = form.dataset.uploads;
  var CHECK_POLL_MS = 400;
  var UNSTARTED_CHECK_MS = 10000;

  function Refusal(message) { this.message = message; }

  // One request to the API; resolves with {status, body}, rejects when the connection breaks.
  function call(method, url, body, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRFToken", csrf);
      if (onProgress) {
        xhr.upload.addEventListener("progress", function (e) { onProgress(e.loaded); });
      }
      xhr.addEventListener("load", function () {
        var parsed = {};
        try { parsed = xhr.responseText ? JSON.parse(xhr.responseText) : {}; } catch (err) {
          parsed = { detail: "The server answered " + xhr.status + "." };
        }
        resolve({ status: xhr.status, body: parsed });
      });
      xhr.addEventListener("error", function () {
        reject(new Refusal("The connection broke during the upload; nothing was saved. Please try again."));
      });
      if (body instanceof Blob) {
        xhr.setRequestHeader("Content-Type", "application/octet-stream");
        xhr.send(body);
      } else {
        xhr.setRequestHeader("Content-Type", "application/json");
        xhr.send(JSON.stringify(body || {}));
      }
    });
  }

  // One part PUT straight to the object store; resolves with the HTTP status.
  function putPart(url, blob, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open("PUT", url);
      xhr.upload.addEventListener("progress", function (e) { onProgress(e.loaded); });
      xhr.addEventListener("load", function () { resolve(xhr.status); });
      xhr.addEventListener("error", function () {
        reject(new Refusal("The connection to the file store broke during the upload. Please try again."));
      });
      xhr.send(blob);
    });
  }

  function expect(response, status) {
    if (response.status !== status) {
      throw new Refusal(response.body.detail || "The server answered " + response.status + ".");
    }
    return response.body;
  }

  function showSent(sent, total) {
    var pct = total ? Math.min(100, Math.round((sent / total) * 100)) : 100;
    bar.style.width = pct + "%";
    bar.parentElement.setAttribute("aria-valuenow", String(pct));
    label.textContent = pct < 100 ? "Uploading… " + pct + "%" : "Uploaded. Checking the files…";
  }

  async function send(file, before, total, started) {
    var body = { filename: file.name, size: file.size, product: form.dataset.product };
    var upload = expect(await call("POST", uploadsUrl, body), 201);
    started.push(upload.id);
    for (var index = 0; index < upload.chunks; index++) {
      var start = index * upload.chunk_size;
      var end = Math.min(file.size, start + upload.chunk_size);
      var progress = function (loaded) { showSent(before + start + loaded, total); };
      if (upload.transport === "s3") {
        var status = await putPart(upload.part_urls[index], file.slice(start, end), progress);
        if (status === 403) {  // the presigned URLs expired: the session hands out fresh ones
          upload = expect(await call("GET", uploadsUrl + upload.id + "/"), 200);
          status = await putPart(upload.part_urls[index], file.slice(start, end), progress);
        }
        if (status !== 200) throw new Refusal("The file store refused part " + (index + 1) + " (" + status + ").");
      } else {
        var url = uploadsUrl + upload.id + "/chunks/" + index + "/";
        expect(await call("PUT", url, file.slice(start, end), progress), 200);
      }
    }
    expect(await call("POST", uploadsUrl + upload.id + "/complete/", {}), 200);
    return upload.id;
  }

  // Waits while workers check the files; stops early when no worker has started (none running?): making
  // the version then checks them in that request.
  async function checked(ids) {
    var began = Date.now();
    for (;;) {
      var states = [];
      for (var i = 0; i < ids.length; i++) {
        states.push(expect(await call("GET", uploadsUrl + ids[i] + "/"), 200).validation);
      }
      var refused = states.filter(function (s) { return s.status === "invalid"; });
      if (refused.length) throw new Refusal(refused[0].error);
      if (states.every(function (s) { return s.status === "valid"; })) return;
      var unstarted = states.every(function (s) { return s.status === "valid" || s.status === "pending"; });
      if (unstarted && Date.now() - began > UNSTARTED_CHECK_MS) return;
      var pct = Math.round(states.reduce(function (sum, s) { return sum + s.progress; }, 0) / states.length);
      label.textContent = "Uploaded. Checking the files… " + pct + "%";
      await new Promise(function (wake) { setTimeout(wake, CHECK_POLL_MS); });
    }
  }

  async function upload() {
    var synthetic = Array.prototype.slice.call(form.elements.synthetic.files);
    var reference = {};
    ["train", "holdout"].forEach(function (role) {
      if (form.elements[role].files.length) reference[role] = form.elements[role].files[0];
    });
    var files = synthetic.concat(Object.values(reference));
    var total = files.reduce(function (sum, f) { return sum + f.size; }, 0);
    var started = [];
    try {
      var ids = [];
      var before = 0;
      for (var i = 0; i < files.length; i++) {
        ids.push(await send(files[i], before, total, started));
        before += files[i].size;
      }
      showSent(total, total);
      await checked(ids);
      var body = {
        synthetic: ids.slice(0, synthetic.length),
        changelog: form.elements.changelog.value,
        submit: false,
      };
      var next = synthetic.length;
      ["train", "holdout"].forEach(function (role) { if (reference[role]) body[role] = ids[next++]; });
      var version = expect(await call("POST", form.dataset.versions, body), 201);
      window.location.assign(form.dataset.confirm.replace(/\/0\/confirm\/$/, "/" + version.number + "/confirm/"));
    } catch (problem) {
      // Nothing half-made stays behind: sessions this attempt opened are dropped.
      started.forEach(function (id) { call("DELETE", uploadsUrl + id + "/").catch(function () {}); });
      throw problem;
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    errorBox.hidden = true;
    button.disabled = true;
    upload().catch(function (problem) {
      errorBox.textContent = problem instanceof Refusal ? problem.message : "The upload failed: " + problem;
      errorBox.hidden = false;
      label.textContent = "";
      bar.style.width = "0";
      button.disabled = false;
    });
  });
})();
