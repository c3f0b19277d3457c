// Live updates: a request page reloads itself when someone else changes the request.
// Everything else in the admin center works without JavaScript.
(function () {
  "use strict";
  var live = document.querySelector("[data-live-request]");
  if (!live) { return; }
  var id = live.getAttribute("data-live-request");
  var seen = live.getAttribute("data-modified") + "|" + live.getAttribute("data-status");
  function poll() {
    fetch("/api/v1/requests/" + encodeURIComponent(id), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (r) {
        if (!r) { return; }
        var now = r.lastModifiedAt + "|" + r.status;
        var typing = document.activeElement && document.activeElement.tagName === "TEXTAREA" && document.activeElement.value;
        if (now !== seen && !typing) { window.location.reload(); }
      })
      .catch(function () {});
  }
  window.setInterval(poll, 3000);
})();
