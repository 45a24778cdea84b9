// Swagger UI over this server's /openapi.json (the page's data-spec-url); a file, not an inline script (CSP).
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: false,
    persistAuthorization: false, // a token is kept in this page only, never in the browser's storage
    validatorUrl: null,          // no call to swagger.io's online validator
    tryItOutEnabled: false,
  });
});
