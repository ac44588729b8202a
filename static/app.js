// Coursewright's own small script: error toasts for failed htmx requests and form confirmations.
// The CSRF token reaches htmx requests through hx-headers on <body>.
(function () {
  "use strict";

  function toast(message) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "toast";
    el.setAttribute("role", "alert");
    el.textContent = message;
    box.appendChild(el);
    setTimeout(function () { el.remove(); }, 7000);
  }

  // The server answers htmx errors with its message as escaped HTML (it may echo input). Decode it to
  // plain text with an inert parser (DOMParser runs no scripts and loads nothing) and only ever show it
  // through textContent, so the message can never become markup on the page.
  function errorText(xhr) {
    var body = (xhr.responseText || "").trim();
    if (!body || /^<!doctype|^<html/i.test(body)) return xhr.statusText || "Request failed";
    var text = new DOMParser().parseFromString(body, "text/html").body.textContent || "";
    return text.trim() || xhr.statusText || "Request failed";
  }

  document.addEventListener("htmx:responseError", function (evt) {
    var xhr = evt.detail.xhr;
    toast(xhr.status + " · " + errorText(xhr).slice(0, 300));
    // htmx leaves the page as it was; put a form's fields back so they match the server's state
    // (e.g. a role select after a refused role change).
    var form = evt.detail.elt && evt.detail.elt.closest && evt.detail.elt.closest("form");
    if (form) form.reset();
  });

  document.addEventListener("htmx:sendError", function () {
    toast("The server could not be reached. Check your connection and try again.");
  });

  // Copy buttons: <button data-copy-target="element-id"> copies that element's text.
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // Lesson reader: left/right arrow keys follow the previous/next links (not while typing or choosing).
  document.addEventListener("keydown", function (evt) {
    if (evt.altKey || evt.ctrlKey || evt.metaKey || evt.shiftKey) return;
    if (evt.key !== "ArrowLeft" && evt.key !== "ArrowRight") return;
    var active = document.activeElement;
    if (active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) return;
    var link = document.querySelector("#lesson-view a[rel=" + (evt.key === "ArrowLeft" ? "prev" : "next") + "]");
    if (link) link.click();
  });

  document.addEventListener("submit", function (evt) {
    var message = evt.target.getAttribute && evt.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) evt.preventDefault();
  }, true);

  // ---- H6: learner reader and roster ------------------------------------------------------------
  // After htmx swaps another lesson into the reader, move focus to its heading (an h1 with tabindex="-1")
  // so screen readers announce the lesson; htmx already took the tab title from the fragment's <title>.
  // A link may name what to focus instead with data-focus-after ("Try again" focuses the quiz).
  function focusAfterSwap(selector) {
    var el = document.querySelector(selector);
    if (el) el.focus({ preventScroll: true });
  }
  document.addEventListener("htmx:afterSettle", function (evt) {
    if (!evt.detail.target || evt.detail.target.id !== "lesson-view") return;
    var source = evt.detail.requestConfig && evt.detail.requestConfig.elt;
    focusAfterSwap((source && source.getAttribute && source.getAttribute("data-focus-after")) || "#page-heading");
  });
  document.addEventListener("htmx:historyRestore", function () {
    if (document.getElementById("lesson-view")) focusAfterSwap("#page-heading");
  });

  // A quiz sent with some questions unanswered asks first. Capture phase, before htmx's own submit
  // listener on the form: a "no" stops the event there. No question answered at all is left to the
  // server, which says so.
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    var total = form.getAttribute && parseInt(form.getAttribute("data-question-count"), 10);
    if (!total) return;
    var answered = 0;
    for (var i = 0; i < total; i++) {
      if (form.querySelector('input[name="q' + i + '"]:checked')) answered++;
    }
    if (answered === 0 || answered === total) return;
    var question = "You answered " + answered + " of " + total + " questions. Submit anyway?";
    if (!window.confirm(question)) {
      evt.preventDefault();
      evt.stopPropagation();
    }
  }, true);

  // A role change from the roster's select asks first, naming the new role; "no" puts the select back.
  document.addEventListener("htmx:confirm", function (evt) {
    var form = evt.detail.elt;
    var template = form && form.getAttribute && form.getAttribute("data-confirm-role");
    if (!template) return;
    var select = form.querySelector("select");
    var role = select ? select.options[select.selectedIndex].text : "";
    evt.preventDefault();
    if (window.confirm(template.replace("{role}", role))) evt.detail.issueRequest(true);
    else form.reset();
  });


})();
