// Passkey ceremonies of the hosted pages (WebAuthn). Loaded as a file: the pages' CSP allows no inline script.
//
// [data-passkey-signin] buttons: ask the server for options (data-options-url), let the browser's
// authenticator answer, post the answer to the button's URL, and follow the redirect it returns.
// [data-passkey-register] forms: the same with navigator.credentials.create, and the passkey's name.
(function () {
  "use strict";
  if (window.authgatePasskeys) return; // the script may be included twice on one page
  window.authgatePasskeys = true;

  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try {
      data = await response.json();
    } catch (_) {
      data = {};
    }
    if (!response.ok) throw new Error(data.error || "The server refused the passkey. Try again.");
    return data;
  }

  function status(near, message) {
    const box = near.parentElement.querySelector(".passkey-status");
    if (!box) return;
    box.textContent = message || "";
    box.hidden = !message;
    // Styled as an error only while it shows one, so a page's other errors stay the only ones.
    box.classList.toggle("alert", Boolean(message));
    box.classList.toggle("alert-error", Boolean(message));
  }

  function reason(error) {
    if (error && error.name === "NotAllowedError") return "The passkey prompt was closed or timed out. Try again.";
    if (error && error.name === "InvalidStateError") return "This device already holds a passkey for your account.";
    return (error && error.message) || "The passkey did not work. Try again.";
  }

  function supported(near) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON) return true;
    status(near, "This browser does not support passkeys.");
    return false;
  }

  document.querySelectorAll("[data-passkey-signin]").forEach(function (button) {
    button.addEventListener("click", async function () {
      if (!supported(button)) return;
      status(button, "");
      button.disabled = true;
      try {
        const options = await post(button.dataset.optionsUrl);
        const credential = await navigator.credentials.get({
          publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options),
        });
        const result = await post(button.dataset.passkeySignin, { credential: credential.toJSON() });
        window.location.assign(result.redirect);
      } catch (error) {
        status(button, reason(error));
        button.disabled = false;
      }
    });
  });

  document.querySelectorAll("form[data-passkey-register]").forEach(function (form) {
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const button = form.querySelector("button");
      if (!supported(button)) return;
      const name = form.querySelector("input[name=name]").value.trim();
      if (!name) {
        status(button, "Give the passkey a name, such as the device it is on.");
        return;
      }
      status(button, "");
      button.disabled = true;
      try {
        const options = await post(form.dataset.optionsUrl);
        const credential = await navigator.credentials.create({
          publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options),
        });
        const result = await post(form.dataset.passkeyRegister, { name: name, credential: credential.toJSON() });
        window.location.assign(result.redirect);
      } catch (error) {
        status(button, reason(error));
        button.disabled = false;
      }
    });
  });
})();
