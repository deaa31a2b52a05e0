// Checkout: with real Stripe, mount the Payment Element and confirm in the browser; on any order page
// that is still pending, poll the order until the webhook marks it paid, then reload.
(function () {
  "use strict";

  function pollOrder(statusEl) {
    var url = statusEl.dataset.url;
    var tries = 0;
    function tick() {
      tries += 1;
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (order) {
          if (order && order.status !== "pending") { window.location.reload(); return; }
          if (tries < 40) { window.setTimeout(tick, 1500); }
        })
        .catch(function () { if (tries < 40) { window.setTimeout(tick, 3000); } });
    }
    window.setTimeout(tick, 1500);
  }

  function mountStripe(form) {
    if (typeof window.Stripe !== "function" || !form.dataset.publishableKey) {
      var message = document.getElementById("payment-message");
      message.textContent = "The payment form could not load. Check your connection and reload the page.";
      message.hidden = false;
      return;
    }
    var stripe = window.Stripe(form.dataset.publishableKey);
    var elements = stripe.elements({ clientSecret: form.dataset.clientSecret });
    elements.create("payment").mount("#payment-element");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      document.getElementById("payment-submit").disabled = true;
      stripe.confirmPayment({ elements: elements, confirmParams: { return_url: form.dataset.returnUrl } })
        .then(function (result) {
          if (result.error) {
            var message = document.getElementById("payment-message");
            message.textContent = result.error.message;
            message.hidden = false;
            document.getElementById("payment-submit").disabled = false;
          }
        });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("payment-form");
    if (form) { mountStripe(form); }
    var statusEl = document.getElementById("order-status");
    var returned = new URLSearchParams(window.location.search).has("payment_intent");
    if (statusEl && statusEl.dataset.status === "pending" && returned) { pollOrder(statusEl); }
  });
})();
