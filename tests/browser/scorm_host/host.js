/* A minimal LMS frame for tests/browser/test_scorm_browser.py: scorm-again's SCORM 1.2 API as window.API,
 * every API call recorded in window.lmsCalls, the SCO named by ?sco= loaded in an iframe. */
(function () {
  "use strict";
  var calls = [];
  window.lmsCalls = calls;
  var api = new window.Scorm12API({ logLevel: 5, autocommit: false });
  api.cmi.student_data.mastery_score = "70";  /* what an LMS reads from adlcp:masteryscore */
  ["LMSInitialize", "LMSCommit", "LMSFinish"].forEach(function (name) {
    api.on(name, function () { calls.push([name]); });
  });
  api.on("LMSSetValue.cmi.*", function (element, value) { calls.push(["LMSSetValue", element, String(value)]); });
  window.API = api;
  window.lmsFinal = function () {
    var core = api.cmi.core;
    return {
      lesson_status: core.lesson_status, lesson_location: core.lesson_location,
      score_raw: core.score.raw, score_min: core.score.min, score_max: core.score.max
    };
  };
  document.addEventListener("DOMContentLoaded", function () {
    var sco = new URLSearchParams(window.location.search).get("sco");
    document.getElementById("sco").src = sco;
    api.on("LMSFinish", function () { document.getElementById("lms-status").textContent = "finished"; });
  });
}());
