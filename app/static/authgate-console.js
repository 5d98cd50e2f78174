/* AuthGate console: the little JavaScript it needs (the CSP allows no inline script). */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Copy buttons: <button data-copy="element-id">.
  function copied(button) {
    var label = button.textContent;
    button.textContent = "Copied";
    button.classList.add("is-copied");
    setTimeout(function () {
      button.textContent = label;
      button.classList.remove("is-copied");
    }, 1600);
  }

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) { return; }
    var text = (source.value !== undefined ? source.value : source.textContent).trim();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { copied(button); }, function () {
        if (fallbackCopy(text)) { copied(button); }
      });
    } else if (fallbackCopy(text)) {
      copied(button);
    }
  });

  // A client picker moves to the chosen client as soon as it changes.
  document.addEventListener("change", function (event) {
    if (event.target.matches("select.js-autosubmit") && event.target.form) {
      event.target.form.requestSubmit();
    }
  });

  // A form re-shown with errors answers 422; HTMX should show it like any other answer.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr && event.detail.xhr.status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
