// The player's analytics events (N3). The templates say what the page is about in data attributes:
//   [data-analytics-page="course"] with data-analytics-course: the course overview (course_viewed);
//   [data-analytics-lesson] with data-analytics-course: a lesson being read (lesson_viewed with its time);
//   [data-analytics-event] rendered only in the answer to an action (a lesson marked complete, a quiz result):
//     sent once, then marked as sent, whether it arrived with a full page, an htmx swap or an out-of-band one.
// Events wait in a queue and go in batches with navigator.sendBeacon (which cannot set headers, so the CSRF
// token rides in the body) when the page is hidden or left, a moment after the last event, and on a timer.
// Analytics must never get in the way of reading: nothing here shows anything, blocks navigation or throws,
// and a batch that cannot be sent is dropped.
(function () {
  "use strict";
  var ENDPOINT = "/api/analytics/event";
  var DEBOUNCE_MS = 2000; // a burst of events (a quiz result: attempted + passed + completed) goes as one batch
  var TIMER_MS = 15000; // what is queued while the page stays open still arrives
  var MAX_BATCH = 100;
  var queue = [];
  var debounce = null;
  // The lesson being read: time counts only while the page is visible (Page Visibility API).
  var reading = null; // {course, lesson, ms, since (null while hidden)}

  function safely(fn) {
    return function () {
      try { return fn.apply(this, arguments); } catch (e) { /* analytics never breaks the page */ }
    };
  }

  function csrfToken() {
    var headers = document.body && document.body.getAttribute("hx-headers");
    return headers ? JSON.parse(headers)["x-csrftoken"] || null : null;
  }

  function queueEvent(type, course, lesson, extra) {
    var event = { type: type, course_id: course, lesson_index: lesson || 0, client_ts: Date.now() };
    if (extra) { for (var key in extra) { event[key] = extra[key]; } }
    queue.push(event);
    clearTimeout(debounce);
    debounce = setTimeout(safely(flush), DEBOUNCE_MS);
  }

  function flush() {
    clearTimeout(debounce);
    while (queue.length) {
      var body = JSON.stringify({ events: queue.splice(0, MAX_BATCH), csrf: csrfToken() });
      var blob = new Blob([body], { type: "text/plain" }); // text/plain: no CORS preflight for a beacon
      if (navigator.sendBeacon) {
        navigator.sendBeacon(ENDPOINT, blob); // false (too big, queue full): dropped
      } else {
        fetch(ENDPOINT, { method: "POST", body: blob, keepalive: true, credentials: "same-origin" })
          .catch(function () {});
      }
    }
  }

  function visibleNow() { return document.visibilityState === "visible"; }

  function startReading(course, lesson) {
    reading = { course: course, lesson: lesson, ms: 0, since: visibleNow() ? Date.now() : null };
  }

  function pauseReading() {
    if (reading && reading.since !== null) {
      reading.ms += Date.now() - reading.since;
      reading.since = null;
    }
  }

  // The view ends (another lesson, hidden, left): one lesson_viewed with the visible time. Coming back to a
  // hidden page starts a new view of the same lesson.
  function endReading() {
    if (!reading) { return; }
    pauseReading();
    queueEvent("lesson_viewed", reading.course, reading.lesson, { time_on_page_ms: reading.ms });
    reading = null;
  }

  // What the page shows now: the course overview, the lesson being read, results of actions not yet sent.
  function scan() {
    var page = document.querySelector("[data-analytics-page='course'][data-analytics-course]:not([data-analytics-sent])");
    if (page) {
      page.setAttribute("data-analytics-sent", "");
      queueEvent("course_viewed", page.getAttribute("data-analytics-course"), 0);
    }
    var lessonEl = document.querySelector("[data-analytics-lesson]:not([data-analytics-event])");
    var course = lessonEl && lessonEl.getAttribute("data-analytics-course");
    var lesson = lessonEl && parseInt(lessonEl.getAttribute("data-analytics-lesson"), 10);
    // "Try again" on a quiz redraws the same lesson: the same view goes on.
    if (reading && (reading.course !== course || reading.lesson !== lesson)) { endReading(); }
    if (lessonEl && !reading) { startReading(course, lesson); }
    var done = document.querySelectorAll("[data-analytics-event]:not([data-analytics-sent])");
    for (var i = 0; i < done.length; i++) {
      var el = done[i];
      el.setAttribute("data-analytics-sent", "");
      var where = [el.getAttribute("data-analytics-course"), parseInt(el.getAttribute("data-analytics-lesson"), 10)];
      var type = el.getAttribute("data-analytics-event");
      if (type === "quiz_result") {
        var meta = { metadata: { score_pct: parseInt(el.getAttribute("data-analytics-score"), 10) || 0 } };
        queueEvent("quiz_attempted", where[0], where[1], meta);
        if (el.getAttribute("data-analytics-passed") === "true") { queueEvent("quiz_passed", where[0], where[1], meta); }
      } else if (type === "lesson_completed") {
        queueEvent("lesson_completed", where[0], where[1]);
      }
    }
  }

  function onVisibility() {
    if (visibleNow()) {
      if (!reading) { scan(); } // back on a lesson that was hidden: a new view
      else if (reading.since === null) { reading.since = Date.now(); }
    } else {
      endReading();
      flush();
    }
  }

  function onLeave() {
    endReading();
    flush();
  }

  document.addEventListener("DOMContentLoaded", safely(scan));
  document.addEventListener("htmx:afterSettle", safely(scan));
  document.addEventListener("visibilitychange", safely(onVisibility));
  window.addEventListener("pagehide", safely(onLeave));
  // A page restored from the back/forward cache is read again: a new view of its lesson.
  window.addEventListener("pageshow", safely(function (e) { if (e.persisted) { scan(); } }));
  setInterval(safely(flush), TIMER_MS);
})();
