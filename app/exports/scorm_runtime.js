/* Coursewright SCORM 1.2 runtime: the only script in an exported SCORM package.
 *
 * Each lesson or project page is a SCO. On load it looks for the LMS's `API` object the standard way
 * (this window and up to seven `parent`s, then the same walk from `window.opener`), calls
 * LMSInitialize(""), records cmi.core.lesson_location and marks the SCO "completed". Submitting a lesson's
 * quiz scores it here against the answers in its fieldsets' data-correct, records cmi.core.score.raw/min/max
 * and "passed" or "failed" against the mastery score (the LMS's cmi.student_data.mastery_score from the
 * manifest's adlcp:masteryscore, else the page's own). On pagehide/unload it records cmi.core.session_time
 * (HHHH:MM:SS.SS), then LMSCommit("") and LMSFinish(""), once. Without an LMS the page stays readable, says
 * so, and the quiz still shows its score.
 */
(function () {
  "use strict";

  var DEFAULT_MASTERY = 70;
  var MAX_PARENTS = 7;
  var api = null;
  var started = Date.now();
  var finished = false;

  function apiIn(win) {
    var hops = 0;
    while (win) {
      try {
        if (win.API && typeof win.API.LMSInitialize === "function") { return win.API; }
      } catch (ignored) { return null; }  /* a frame of another origin */
      if (hops >= MAX_PARENTS || win.parent === win || !win.parent) { return null; }
      win = win.parent;
      hops += 1;
    }
    return null;
  }

  function findApi() {
    var found = apiIn(window);
    if (!found) {
      try { if (window.opener) { found = apiIn(window.opener); } } catch (ignored) { found = null; }
    }
    return found;
  }

  function set(name, value) { if (api) { api.LMSSetValue(name, String(value)); } }
  function get(name) { return api ? String(api.LMSGetValue(name) || "") : ""; }

  function pad(n, width) {
    var s = String(n);
    while (s.length < width) { s = "0" + s; }
    return s;
  }

  /* SCORM 1.2 CMITimespan: HHHH:MM:SS.SS (hours 2-4 digits, hundredths optional). */
  function timespan(ms) {
    var hundredths = Math.max(0, Math.floor(ms / 10));
    var hours = Math.min(9999, Math.floor(hundredths / 360000));
    var minutes = Math.floor(hundredths / 6000) % 60;
    var seconds = Math.floor(hundredths / 100) % 60;
    return pad(hours, 4) + ":" + pad(minutes, 2) + ":" + pad(seconds, 2) + "." + pad(hundredths % 100, 2);
  }

  function pagePath() {
    var parts = window.location.pathname.split("/");
    var page = parts.pop() || "index.html";
    var folder = parts.pop();
    return (folder === "lessons" || folder === "projects") ? folder + "/" + page : page;
  }

  function masteryScore() {
    var fromLms = parseFloat(get("cmi.student_data.mastery_score"));
    if (!isNaN(fromLms)) { return fromLms; }
    var fromPage = parseFloat(document.body.getAttribute("data-mastery-score"));
    return isNaN(fromPage) ? DEFAULT_MASTERY : fromPage;
  }

  function scoreQuiz(form) {
    var fieldsets = form.querySelectorAll("fieldset[data-correct]");
    var right = 0;
    var i;
    for (i = 0; i < fieldsets.length; i += 1) {
      var chosen = fieldsets[i].querySelector("input[type=radio]:checked");
      var ok = chosen !== null && chosen.value === fieldsets[i].getAttribute("data-correct");
      fieldsets[i].classList.remove("answer-right", "answer-wrong");
      fieldsets[i].classList.add(ok ? "answer-right" : "answer-wrong");
      var feedback = fieldsets[i].querySelector(".answer-feedback");
      if (!feedback) {
        feedback = document.createElement("p");
        feedback.className = "answer-feedback";
        fieldsets[i].appendChild(feedback);
      }
      feedback.textContent = ok ? "Right." : (chosen === null ? "Not answered." : "Not right.");
      if (ok) { right += 1; }
    }
    var total = fieldsets.length;
    var score = total ? Math.round((100 * right) / total) : 0;
    var passed = score >= masteryScore();
    set("cmi.core.score.min", 0);
    set("cmi.core.score.max", 100);
    set("cmi.core.score.raw", score);
    set("cmi.core.lesson_status", passed ? "passed" : "failed");
    if (api) { api.LMSCommit(""); }
    var result = form.querySelector("[data-quiz-result]");
    if (result) {
      result.textContent = right + " of " + total + " right (" + score + "%): " +
        (passed ? "passed." : "not passed yet; the pass mark is " + masteryScore() + "%.");
      result.classList.remove("quiz-passed", "quiz-failed");
      result.classList.add(passed ? "quiz-passed" : "quiz-failed");
    }
  }

  function finish() {
    if (!api || finished) { return; }
    finished = true;
    set("cmi.core.session_time", timespan(Date.now() - started));
    api.LMSCommit("");
    api.LMSFinish("");
  }

  function noteOffline() {
    var note = document.createElement("p");
    note.className = "lms-note";
    note.setAttribute("role", "note");
    note.textContent = "Not running in an LMS: you can read this page and try its quiz, but nothing is recorded.";
    var main = document.querySelector("main") || document.body;
    main.insertBefore(note, main.firstChild);
  }

  function start() {
    api = findApi();
    if (api && String(api.LMSInitialize("")) !== "true") { api = null; }
    if (!api) {
      noteOffline();
    } else {
      set("cmi.core.lesson_location", pagePath());
      var status = get("cmi.core.lesson_status");
      if (status !== "passed" && status !== "failed" && status !== "completed") {
        set("cmi.core.lesson_status", "completed");
      }
      api.LMSCommit("");
    }
    var forms = document.querySelectorAll("form[data-quiz]");
    var i;
    for (i = 0; i < forms.length; i += 1) {
      forms[i].addEventListener("submit", function (event) {
        event.preventDefault();
        scoreQuiz(event.currentTarget);
      });
    }
    window.addEventListener("pagehide", finish);
    window.addEventListener("unload", finish);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
