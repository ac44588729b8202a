// Starts Swagger UI (static/vendor/swagger-ui, from the swagger-ui-dist npm package) on /schema.
// A file, not an inline script: the Content-Security-Policy runs only our own script files.
(function () {
  "use strict";
  window.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("swagger-ui");
    window.SwaggerUIBundle({
      url: root.getAttribute("data-spec-url"),
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,  // the default badge loads an image from validator.swagger.io
    });
  });
})();
