// Ledger explorer: "Verify" fetches an entry, its inclusion proof and the latest signed head from the API,
// rehashes the entry (SHA-256(0x00 || bytes)) and recomputes the root from the proof (RFC 9162 §2.1.3.2) in
// the browser, and compares it with the root in the signed checkpoint.
(function () {
  "use strict";
  function getJson(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error(body.detail || ("HTTP " + r.status)); }
        return body;
      });
    });
  }
  function concat(parts) {
    var size = parts.reduce(function (n, p) { return n + p.length; }, 0);
    var out = new Uint8Array(size), at = 0;
    parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }
  function sha256(bytes) {
    return crypto.subtle.digest("SHA-256", bytes).then(function (d) { return new Uint8Array(d); });
  }
  function fromHex(hex) {
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i++) { out[i] = parseInt(hex.substr(2 * i, 2), 16); }
    return out;
  }
  function toHex(bytes) {
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function fromBase64(text) {
    var raw = atob(text), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }
  function node(left, right) { return sha256(concat([new Uint8Array([1]), left, right])); }
  async function rootFromProof(leafHash, index, size, proof) {
    var fn = index, sn = size - 1, result = leafHash;
    for (var i = 0; i < proof.length; i++) {
      if (sn === 0) { return null; }
      if (fn % 2 === 1 || fn === sn) {
        result = await node(proof[i], result);
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        result = await node(result, proof[i]);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    return sn === 0 ? result : null;
  }
  async function verify(index, out) {
    out.textContent = "checking…";
    out.className = "ledger-verify-result small";
    try {
      var head = await getJson("/api/v1/ledger/head/");
      if (index >= head.size) {
        // Not an error: heads are signed every few entries or minutes, and the next one will cover it.
        out.textContent = "⏳ pending: the next signed head will cover it (the latest covers " + head.size + " entries)";
        out.className += " pending";
        return;
      }
      var entry = await getJson("/api/v1/ledger/entries/" + index + "/");
      var proof = await getJson("/api/v1/ledger/entries/" + index + "/proof/?size=" + head.size);
      var leafHash = await sha256(concat([new Uint8Array([0]), fromBase64(entry.leaf)]));
      var root = await rootFromProof(leafHash, index, head.size, proof.proof.map(fromHex));
      var signedRoot = toHex(fromBase64(head.checkpoint.split("\n")[2]));
      if (root !== null && toHex(root) === signedRoot) {
        out.textContent = "✔ in the signed tree of " + head.size + " entries";
        out.className += " pass";
      } else {
        out.textContent = "✘ does not match the signed head";
        out.className += " fail";
      }
    } catch (error) {
      out.textContent = "✘ " + error.message;
      out.className += " fail";
    }
  }
  document.querySelectorAll(".ledger-verify").forEach(function (button) {
    button.addEventListener("click", function () {
      var index = parseInt(button.getAttribute("data-index"), 10);
      verify(index, document.getElementById("verify-" + index));
    });
  });
})();
