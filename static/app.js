// Coursewright's own small script: errors of htmx requests where they happen, form confirmations,
// selections and keyboard shortcuts. The CSRF token reaches htmx requests through hx-headers on <body>.
//
// Errors of htmx requests, one approach everywhere: the server answers a 4xx/5xx with its message as
// escaped text (app/web/errors.py) and never re-targets anything; this script decides where it goes.
// A request made from inside a form shows the message in that form: in the element named by the
// form's data-error-target, else in its first <p class="form-error" role="alert"> (created at the top
// of the form when missing), which is then focused. Nothing the person typed or ticked is touched:
// forms are never reset on error, except those that opt in with data-reset-on-error (the roster's role
// select snaps back to the role the server kept). A request from outside any form gets a toast.
// (A handler that re-renders its own form with a 200 (the invitation form) needs none of this.)
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

  function formOf(elt) {
    if (!elt || !elt.closest) return null;
    return elt.form || elt.closest("form");
  }

  function errorBox(form) {
    var named = form.getAttribute("data-error-target");
    var box = named ? document.getElementById(named) : form.querySelector(".form-error");
    if (!box) {
      box = document.createElement("p");
      box.className = "form-error";
      box.setAttribute("role", "alert");
      form.insertBefore(box, form.firstChild);
    }
    return box;
  }

  function showFormError(form, message) {
    var box = errorBox(form);
    box.textContent = message;
    box.hidden = false;
    box.setAttribute("tabindex", "-1");
    box.focus({ preventScroll: false });
  }

  document.addEventListener("htmx:responseError", function (evt) {
    var xhr = evt.detail.xhr;
    var message = errorText(xhr).slice(0, 500);
    var form = formOf(evt.detail.elt);
    if (!form) {
      toast(xhr.status + " · " + message);
      return;
    }
    if (form.hasAttribute("data-reset-on-error")) form.reset();
    showFormError(form, message);
  });

  // A new attempt from the form clears the message of the last one.
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var form = formOf(evt.detail.elt);
    if (!form) return;
    var named = form.getAttribute("data-error-target");
    var box = named ? document.getElementById(named) : form.querySelector(".form-error");
    if (box && box.textContent) {
      box.hidden = true;
      box.textContent = "";
    }
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

  // Confirmations: data-confirm on the button that submits, else on the form. "{n}" and "{items}" count
  // the ticked checkboxes named by the form's data-count ("Approve 12 items?"); with none ticked there is
  // nothing to confirm and the server says what is missing. Capture phase, before htmx's own submit
  // listener on the form: a "no" stops the event there as well as the plain submission.
  function tickedCount(form) {
    var name = form.getAttribute("data-count");
    return name ? form.querySelectorAll('input[type="checkbox"][name="' + name + '"]:checked').length : 0;
  }

  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (!form.getAttribute) return;
    var button = evt.submitter;
    var message = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (!message) return;
    if (message.indexOf("{n}") >= 0) {
      var n = tickedCount(form);
      if (n === 0) return;
      message = message.replace("{n}", n).replace("{items}", n === 1 ? "item" : "items");
    }
    if (!window.confirm(message)) {
      evt.preventDefault();
      evt.stopPropagation();
    }
  }, true);

  // Selections (the review queue's bulk form): a [data-select-all] checkbox ticks every checkbox the form's
  // data-count names, and [data-selected-count] says how many are ticked.
  function showSelection(form) {
    var name = form.getAttribute("data-count");
    var boxes = form.querySelectorAll('input[type="checkbox"][name="' + name + '"]');
    var ticked = tickedCount(form);
    var all = form.querySelector("[data-select-all]");
    if (all) {
      all.checked = boxes.length > 0 && ticked === boxes.length;
      all.indeterminate = ticked > 0 && ticked < boxes.length;
    }
    var label = form.querySelector("[data-selected-count]");
    if (label) label.textContent = ticked + " selected";
  }

  document.addEventListener("change", function (evt) {
    var box = evt.target;
    var form = box.type === "checkbox" && box.form;
    if (!form || !form.getAttribute("data-count")) return;
    if (box.hasAttribute("data-select-all")) {
      var name = form.getAttribute("data-count");
      form.querySelectorAll('input[type="checkbox"][name="' + name + '"]').forEach(function (each) {
        each.checked = box.checked;
      });
    }
    showSelection(form);
  });

  // Keyboard shortcuts (the item review page documents them in a <details data-shortcuts-help>): a letter
  // clicks the element marked data-shortcut="<letter>", or focuses it when it is a field; "?" shows or
  // hides the list. Never while typing in a field or with a modifier key, never twice for one page.
  var leaving = false;
  document.addEventListener("keydown", function (evt) {
    if (evt.altKey || evt.ctrlKey || evt.metaKey || evt.repeat || leaving) return;
    var active = document.activeElement;
    if (active && (active.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName))) return;
    if (evt.key === "?") {
      var help = document.querySelector("[data-shortcuts-help]");
      if (help) {
        help.open = !help.open;
        evt.preventDefault();
      }
      return;
    }
    if (evt.shiftKey || !/^[a-z]$/.test(evt.key)) return;
    var target = document.querySelector('[data-shortcut="' + evt.key + '"]');
    if (!target) return;
    evt.preventDefault();
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) {
      target.focus();
      return;
    }
    if (target.tagName === "A" || target.type === "submit") {
      leaving = true;  // a held or repeated key must not approve twice while the next page loads
      setTimeout(function () { leaving = false; }, 3000);
    }
    target.click();
  });
  window.addEventListener("pageshow", function () { leaving = false; });

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
